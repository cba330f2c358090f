"""Run directories, config.json, seeding, atomic checkpoints and graceful interruption."""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gymlab.core.config import require
from gymlab.core.errors import CheckpointError, UserError

CHECKPOINT_FORMAT = "gymlab-checkpoint-v1"


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


def seed_everything(seed: int, torch_threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(torch_threads)


def rng_states() -> dict[str, Any]:
    """The global generators' states (python, numpy legacy, torch), loadable weights-only."""
    return {
        "python": json.dumps(random.getstate()),
        "numpy": json.dumps(_jsonable(np.random.get_state(legacy=False))),
        "torch": torch.get_rng_state(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = json.loads(states["python"])
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(json.loads(states["numpy"]))
    torch.set_rng_state(states["torch"])


def generator_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def set_generator_state(rng: np.random.Generator, state: str) -> None:
    rng.bit_generator.state = json.loads(state)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def versions() -> dict[str, str]:
    import gymnasium

    import gymlab

    return {
        "gymlab": gymlab.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
    }


class RunDir:
    """One run's folder: config.json, progress.jsonl, TensorBoard events, checkpoints/ (made
    by the first checkpoint: a network search has none)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, logdir: str, algo: str, env_id: str, config: dict[str, Any],
               name: str | None = None) -> RunDir:
        """A new run directory `<logdir>/<name>-<stamp>` (name: `<algo>-<env>` by default)
        holding config.json."""
        path = new_dir(Path(logdir), name or f"{algo}-{env_id.replace('/', '_')}")
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


def new_dir(parent: Path, name: str) -> Path:
    """Create `parent/name-YYYYmmdd-HHMMSS` (with -2, -3, ... when taken) and return it.
    mkdir without exist_ok claims the name even against a process racing for it."""
    base = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = parent / base, 1
    while True:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = parent / f"{base}-{n}"
        except OSError as exc:
            raise UserError(f"cannot create the run directory {path}: {exc.strerror}") from None


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_checkpoint(path: str | Path, algo: str, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a crash mid-write leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": CHECKPOINT_FORMAT, "algo": algo, **payload}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, algo: str | None = None) -> dict[str, Any]:
    """Load a checkpoint without running code (weights_only), with one-line errors."""
    path = Path(path)
    if path.is_dir():
        run = RunDir.open(path)
        path = run.checkpoint("best") if run.checkpoint("best").exists() else run.checkpoint("last")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({first})") from None
    except Exception as exc:  # the weights-only unpickler raises a bare UnpicklingError
        raise CheckpointError(
            f"checkpoint {path} cannot be read safely ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gymlab checkpoint")
    if algo is not None and data["algo"] != algo:
        raise CheckpointError(f"{path} is a {data['algo']} checkpoint, not {algo}")
    return data


class GracefulInterrupt:
    """Turns the first SIGINT/SIGTERM into a flag the training loop checks between steps
    (and a call of `on_signal`, for loops that must be told); a second one interrupts at
    once."""

    def __init__(self, on_signal: Callable[[int], None] | None = None) -> None:
        self.signal: int | None = None
        self.on_signal = on_signal
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal or 0)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        if self.on_signal is not None:
            self.on_signal(signum)

    def __enter__(self) -> GracefulInterrupt:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
