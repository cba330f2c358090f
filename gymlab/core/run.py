"""What every run has: its config (RunConfig) and its directory (config.json, the
versions it ran with)."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gymlab.core.config import require
from gymlab.core.errors import (
    UserError,
)

if TYPE_CHECKING:
    pass

# numpy and torch are imported inside the functions that use them: the CLI imports this
# module to build its flags from RunConfig, and `gymlab --help` should not load torch.


@dataclass(frozen=True)
class RunConfig:
    """What every training run has, whatever the algorithm."""

    env: str = "CartPole-v1"
    """gymnasium environment id."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the environment's constructor, as a JSON object."""
    seed: int = 0
    """Seed of every random generator of the run (same seed and config: same numbers)."""
    total_steps: int = 100_000
    """Environment steps to train for (all parallel environments counted)."""
    stop_reward: float | None = None
    """Stop as soon as an evaluation's mean return reaches this (none: never stop early)."""
    eval_every: int = 1_000
    """Evaluate (and write checkpoints/last.pt) every this many environment steps; 0: never."""
    eval_episodes: int = 10
    """Deterministic episodes per evaluation, run in a separate environment."""
    log_every: int = 1_000
    """Log training scalars (loss, epsilon, ...) every this many environment steps."""
    logdir: str | None = "runs"
    """Parent folder of run directories (none: keep nothing on disk)."""
    torch_threads: int = 1
    """torch threads in this process (one is fastest for small networks on a shared CPU)."""
    progress: bool = True
    """Show a live progress bar (plain periodic lines when not on a terminal)."""
    video: Literal["none", "before-after"] = "none"
    """before-after: write videos/before.mp4 (the untrained policy) and videos/after.mp4 (the
    best checkpoint), one episode each."""

    def __post_init__(self) -> None:
        require(self.total_steps > 0, f"total_steps must be positive, got {self.total_steps}")
        require(self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}")
        require(self.eval_episodes > 0, f"eval_episodes must be positive, got {self.eval_episodes}")
        require(self.log_every > 0, f"log_every must be positive, got {self.log_every}")
        require(self.torch_threads > 0, f"torch_threads must be positive, got {self.torch_threads}")


def gymlab_version() -> str:
    """The installed gymlab's version (from its package metadata)."""
    from importlib import metadata

    try:
        return metadata.version("gymlab")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def versions() -> dict[str, str]:
    """The versions a run ran with, from package metadata (importing torch for its version
    would cost a torch-free run a second)."""
    from importlib import metadata

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"gymlab": gymlab_version(), "python": platform.python_version(),
            **{name: version(name) for name in ("torch", "gymnasium", "numpy")}}


class RunDir:
    """One run's folder: config.json, progress.jsonl, TensorBoard events, checkpoints/ (made
    by the first checkpoint: a network search has none)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, logdir: str, algo: str, env_id: str, config: dict[str, Any],
               name: str | None = None, path: Path | None = None) -> RunDir:
        """A new `<logdir>/<name>-<YYYYmmdd-HHMMSS>` with config.json; `name` defaults to
        f"{algo}-{env_id}", made safe for a folder name. `path`: exactly that folder
        instead, which must be new or empty."""
        if path is None:
            path = new_dir(Path(logdir), safe_name(name or f"{algo}-{env_id}"))
        else:
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise UserError(f"{path} already exists and is not an empty folder; continue "
                                f"that run with --resume {path}, or choose another folder")
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot create the run directory {path}: {exc.strerror}") from None
        record = {
            "algo": algo,
            **config,
            "versions": versions(),
            "command": sys.argv,
        }
        atomic_write_text(path / "config.json", json.dumps(record, indent=2) + "\n")
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        run = cls(Path(path))
        if not (run.path / "config.json").is_file():
            raise UserError(f"{path} is not a gymlab run directory (no config.json)")
        return run

    def config(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read {self.path / 'config.json'}: {exc}") from None

    def checkpoint(self, name: str = "last") -> Path:
        return self.path / "checkpoints" / f"{name}.pt"


def safe_name(name: str) -> str:
    """`name` with every character but letters, digits, '.', '_' and '-' replaced by '_'
    (env ids hold '/' and, in the "module:Env-v0" form, ':')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def new_dir(parent: Path, name: str) -> Path:
    """Create `parent/name-YYYYmmdd-HHMMSS` (with -2, -3, ... when taken) and return it.
    mkdir without exist_ok claims the name even against a process racing for it."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"the log directory {parent} is a file, not a folder") from None
    except OSError as exc:
        raise UserError(f"cannot create the log directory {parent}: {exc.strerror}") from None
    base = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = parent / base
    for n in range(2, 10_000):
        try:
            path.mkdir()
            return path
        except FileExistsError:
            path = parent / f"{base}-{n}"
        except OSError as exc:
            raise UserError(f"cannot create the run directory {path}: {exc.strerror}") from None
    raise UserError(f"cannot create a run directory in {parent}: every name {base}-N is taken")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
