"""Write a pip-installable package of gymnasium environments (`gymlab new-env`).

The package uses the src layout: NAME/pyproject.toml, NAME/src/NAME/__init__.py (registers
every stage as NAME/<Stage>-v0), one module per stage, NAME/tests/test_env.py and a README.
Each stage is the same working toy (reach a target on a grid, larger for later stages) with
the spaces chosen by --obs and --action, so that the package installs, passes its tests and
trains the moment it is written.
"""

from __future__ import annotations

import importlib.util
import keyword
import os
import re
import secrets
import shutil
import sys
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from gymlab.core.errors import UserError
from gymlab.scaffold.variants import ACTIONS, OBSERVATIONS

DEFAULT_STAGES = ("Reach",)
FIRST_GRID = 5
"""Grid size of the first stage; each later stage's grid is 2 cells larger."""


@dataclass(frozen=True)
class Stage:
    name: str  # as in the id: NAME/<name>-v0
    module: str
    cls: str
    size: int

    @property
    def max_episode_steps(self) -> int:
        return 10 * self.size


def check_package_name(name: str) -> None:
    """A UserError unless `name` can be imported as a new top-level package."""
    fixed = _fixed_package_name(name)
    hint = f"; did you mean {fixed!r}?" if fixed and fixed != name else ""
    if not (name.isidentifier() and name.isascii()):
        raise UserError(f"{name!r} is not a valid Python package name (ASCII letters, digits "
                        f"and _, not starting with a digit){hint}")
    if keyword.iskeyword(name):
        raise UserError(f"{name!r} is a Python keyword, not a usable package name{hint}")
    if name in sys.stdlib_module_names:
        raise UserError(f"{name!r} is the name of a standard-library module{hint}")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:  # e.g. __main__, whose __spec__ may be None
        raise UserError(f"{name!r} cannot be a new package name: {exc}") from None
    if spec is not None:  # importing the new package would give this one (or the other way)
        where = spec.origin or ", ".join(spec.submodule_search_locations or [])
        raise UserError(f"a module named {name!r} is already importable ({where}); "
                        "pick another name")


def _fixed_package_name(name: str) -> str | None:
    fixed = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_").lower()
    if not fixed:
        return None
    if fixed[0].isdigit():
        fixed = "env_" + fixed
    if keyword.iskeyword(fixed) or fixed in sys.stdlib_module_names:
        fixed += "_env"
    return fixed


def make_stages(names: list[str] | tuple[str, ...]) -> list[Stage]:
    """Validate stage names (CamelCase identifiers, used in ids and class names)."""
    stages: list[Stage] = []
    for i, name in enumerate(names):
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
            fixed = "".join(part[:1].upper() + part[1:]
                            for part in re.split(r"[^0-9A-Za-z]+", name) if part)
            if fixed[:1].isdigit():
                fixed = "Stage" + fixed
            hint = f"; did you mean {fixed!r}?" if fixed else ""
            raise UserError(f"stage {name!r} is not a CamelCase name (an ASCII capital letter, "
                            f"then letters and digits){hint}")
        module = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
        if keyword.iskeyword(module):
            raise UserError(f"stage {name!r} would be the module {module}, a Python keyword")
        for other in stages:
            if other.name == name:
                raise UserError(f"stage {name!r} is given twice")
            if other.module == module:
                raise UserError(f"stages {other.name!r} and {name!r} would share the module "
                                f"{module}.py")
        cls = name if name.endswith("Env") else name + "Env"
        stages.append(Stage(name, module, cls, FIRST_GRID + 2 * i))
    return stages


def new_env(name: str, stages: list[str] | tuple[str, ...] = DEFAULT_STAGES,
            directory: str | os.PathLike = ".", obs: str = "box",
            action: str = "discrete") -> Path:
    """Write the package `directory/name/` and return its path.

    Everything is checked before anything is written, and the package is written to a
    temporary folder beside the target and renamed into place, so an error leaves nothing.
    """
    if obs not in OBSERVATIONS:
        raise UserError(f"obs must be one of {', '.join(OBSERVATIONS)}, got {obs!r}")
    if action not in ACTIONS:
        raise UserError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    check_package_name(name)
    staged = make_stages(stages or DEFAULT_STAGES)
    parent = Path(directory)
    target = parent / name
    if target.exists() or target.is_symlink():
        raise UserError(f"{target} already exists; choose another name or --dir")
    if parent.exists() and not parent.is_dir():
        raise UserError(f"--dir {parent} is not a directory")
    files = render_package(name, staged, obs, action)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{name}-{secrets.token_hex(4)}.tmp"
    tmp.mkdir()  # (not tempfile.mkdtemp: its mode 0700 would stay on the package)
    try:
        for relative, text in files.items():
            path = tmp / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.rename(tmp, target)  # the package appears whole, or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def render_package(name: str, stages: list[Stage], obs: str,
                   action: str) -> dict[str, str]:
    """Relative path -> text of every file of the package."""
    ids = [f"{name}/{s.name}-v0" for s in stages]
    variant = {**OBSERVATIONS[obs], **ACTIONS[action]}
    spaces_doc = "\n".join(textwrap.fill(line, 88, subsequent_indent="    ") for line in (
        f"Observation: {variant['obs_doc']}.", f"Action: {variant['action_doc']}."))
    files = {
        "pyproject.toml": _fill("pyproject.toml", name=name, ids=", ".join(ids)),
        "README.md": _fill(
            "README.md", name=name, first_id=ids[0], **variant,
            table="\n".join(f"| `{i}` | `{s.cls}` (grid {s.size}x{s.size}) | "
                            f"`src/{name}/{s.module}.py` |" for i, s in zip(ids, stages))),
        f"src/{name}/__init__.py": _fill(
            "__init__.py", name=name, first_id=ids[0],
            imports="\n".join(sorted(f"from {name}.{s.module} import {s.cls}" for s in stages)),
            exports=", ".join(f'"{s.cls}"' for s in stages),
            registrations="\n".join(
                f'register(\n    id="{i}",\n    entry_point="{name}.{s.module}:{s.cls}",\n'
                f"    max_episode_steps={s.max_episode_steps},\n)"
                for i, s in zip(ids, stages))),
        "tests/test_env.py": _fill("test_env.py", name=name,
                                   id_list=", ".join(f'"{i}"' for i in ids)),
    }
    for stage in stages:
        files[f"src/{name}/{stage.module}.py"] = _fill(
            "env.py", stage=stage.name, cls=stage.cls, size=str(stage.size),
            spaces_doc=spaces_doc, **variant)
    return files


def _fill(template: str, **values: str) -> str:
    text = resources.files("gymlab.scaffold").joinpath(f"templates/{template}.tmpl")
    return Template(text.read_text(encoding="utf-8")).substitute(values)
