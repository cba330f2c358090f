"""The package's layering: imports point down only, and no two modules import each other.

core <- envs <- agents <- nas <- registry, tune, integrations <- cli <- the package root.
Imports inside functions count too: a lazy import of a higher layer is still a dependency.
"""

import ast
from collections import defaultdict
from pathlib import Path

import gymlab

ROOT = Path(gymlab.__file__).parent
LAYERS = {"core": 0, "envs": 1, "agents": 2, "scaffold": 2, "nas": 3, "registry": 4,
          "tune": 4, "integrations": 4, "cli": 5, "__init__": 6, "__main__": 6}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS["__init__"] if len(parts) == 1 else LAYERS[parts[1]]


def is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> set[str]:
    """The gymlab modules a file imports, wherever the import statement stands."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(
        ".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gymlab"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("gymlab"):  # `from package import module` names the module
                found.update(f"{target}.{a.name}" if is_module(f"{target}.{a.name}") else target
                             for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(ROOT.rglob("*.py"))}


def test_every_package_has_a_layer():
    top = {module_name(p).split(".")[1] for p in ROOT.rglob("*.py") if p.parent != ROOT or
           p.name not in ("__init__.py",)} - {"gymlab"}
    unknown = {name for name in top if name not in LAYERS}
    assert not unknown, f"add these to LAYERS: {unknown}"


def test_imports_point_down():
    upward = [f"{mod} -> {dep}" for mod, deps in graph().items() for dep in deps
              if layer(dep) > layer(mod)]
    assert upward == []


def test_no_two_modules_import_each_other():
    edges = graph()
    owners = defaultdict(set)
    for mod in edges:
        owners[mod].add(mod)

    def resolve(dep: str) -> str:  # `from gymlab.core import run` names the module gymlab.core
        return dep if dep in edges else dep.rpartition(".")[0]

    pairs = sorted({tuple(sorted((mod, resolve(dep)))) for mod, deps in edges.items()
                    for dep in deps if resolve(dep) != mod and mod in {
                        resolve(d) for d in edges.get(resolve(dep), ())}})
    assert pairs == []
