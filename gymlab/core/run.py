"""Run directories, config.json, seeding, atomic checkpoints and graceful interruption."""

from __future__ import annotations

import json
import os
import platform
import random
import re
import signal
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gymlab.core.config import require
from gymlab.core.errors import (
    CheckpointError,
    CheckpointWriteError,
    CorruptCheckpointError,
    UserError,
)

if TYPE_CHECKING:
    import numpy as np

# numpy and torch are imported inside the functions that use them: the CLI imports this
# module to build its flags from RunConfig, and `gymlab --help` should not load torch.

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
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(torch_threads)


def rng_states() -> dict[str, Any]:
    """The global generators' states (python, numpy legacy, torch), loadable weights-only."""
    import numpy as np
    import torch

    return {
        "python": json.dumps(random.getstate()),
        "numpy": json.dumps(_jsonable(np.random.get_state(legacy=False))),
        "torch": torch.get_rng_state(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = json.loads(states["python"])
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(json.loads(states["numpy"]))
    torch.set_rng_state(states["torch"])


def generator_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def set_generator_state(rng: np.random.Generator, state: str) -> None:
    rng.bit_generator.state = json.loads(state)


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def gymlab_version() -> str:
    """The installed gymlab's version (from its package metadata)."""
    from importlib import metadata

    try:
        return metadata.version("gymlab")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def versions() -> dict[str, str]:
    import gymnasium
    import numpy as np
    import torch

    return {
        "gymlab": gymlab_version(),
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


_being_written: set[Path] = set()
"""Temporary checkpoint files being written, removed if a second signal ends the process."""


def save_checkpoint(path: str | Path, algo: str, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a crash mid-write leaves the previous file intact. A
    failed write (disk full, permissions) raises CheckpointWriteError (an OSError) with one
    line, after removing its temporary file."""
    import torch

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    _being_written.add(tmp)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save({"format": CHECKPOINT_FORMAT, "algo": algo, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:  # an interrupt included: no temporary file stays behind
        tmp.unlink(missing_ok=True)
        # torch's archive writer reports a failed write (a full disk) as a RuntimeError
        if not (isinstance(exc, OSError) or
                (isinstance(exc, RuntimeError) and _is_write_failure(exc))):
            raise
        reason = _first_line(exc) + ("" if isinstance(exc, OSError) else "; is the disk full?")
        raise CheckpointWriteError(
            f"cannot write the checkpoint {path} ({reason}); the previous one is kept") from None
    finally:
        _being_written.discard(tmp)


def _is_write_failure(exc: RuntimeError) -> bool:
    text = str(exc)
    return "write" in text or "inline_container" in text or "unexpected pos" in text


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _archive_problem(path: Path) -> str | None:
    """Why `path` is not an intact checkpoint archive (torch writes zip files with checksums),
    or None. Reads the file, runs nothing."""
    try:
        if not zipfile.is_zipfile(path):
            return "not a checkpoint archive"
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        return _first_line(exc)
    return f"{bad} fails its checksum" if bad is not None else None


def checkpoint_for(run_or_file: str | Path, which: Literal["best", "last"] = "best") -> Path:
    """The checkpoint file a command acts on: a file as given, or a run directory's
    `which`.pt. best.pt falls back to last.pt, with a note on stderr, when it is missing
    (no evaluation yet) or truncated or corrupt."""
    path = Path(run_or_file)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if not path.is_dir():
        return path
    run = RunDir.open(path)
    file = run.checkpoint(which)
    last = run.checkpoint("last")
    if which == "best" and last.is_file():
        problem = ("has no best.pt yet" if not file.exists()
                   else f"has a truncated or corrupt best.pt ({reason})"
                   if (reason := _archive_problem(file)) else None)
        if problem is not None:
            print(f"note: {path} {problem}; using last.pt", file=sys.stderr)
            return last
    if not file.exists():
        raise CheckpointError(f"{path} has no checkpoint ({file} is missing)")
    return file


def load_checkpoint(path: str | Path, algo: str | None = None) -> dict[str, Any]:
    """Load a checkpoint (a file, or a run directory: see checkpoint_for) without running code
    (weights_only), with one-line errors."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = checkpoint_for(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    problem = _archive_problem(path)
    if problem is not None:  # not unpickled at all: damage, not a security question
        raise CorruptCheckpointError(f"checkpoint {path} is truncated or corrupt ({problem})")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptCheckpointError(
            f"checkpoint {path} is truncated or corrupt ({_first_line(exc)})") from None
    except Exception as exc:  # the weights-only unpickler refuses code: a crafted file
        raise CheckpointError(
            f"checkpoint {path} cannot be read safely ({type(exc).__name__}: it asks to run "
            "code or build objects a checkpoint does not hold)") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gymlab checkpoint")
    if algo is not None and data["algo"] != algo:
        raise CheckpointError(f"{path} is a {data['algo']} checkpoint, not {algo}")
    return data


def _interactive() -> bool:
    """A Python prompt or a Jupyter kernel, where ending the process would lose the session."""
    return hasattr(sys, "ps1") or bool(sys.flags.interactive) or "ipykernel" in sys.modules


class GracefulInterrupt:
    """Turns the first SIGINT/SIGTERM into a flag the training loop checks between steps
    (and a call of `on_signal`, for loops that must be told).

    A second signal means "stop now": it raises SystemExit(128 + the signal), which unwinds
    through `finally` blocks and ends the process without a traceback, the last finished
    checkpoint kept (checkpoints are replaced atomically). Any further signal, during that
    unwinding or later while the interrupted process shuts down, ends it at once and silently
    (a traceback from an exit handler would bury the message saying how to resume). At an
    interactive prompt the second signal raises KeyboardInterrupt instead, and the previous
    handlers come back when the context ends.
    """

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
            if _interactive():
                raise KeyboardInterrupt
            for sig in self._previous:
                signal.signal(sig, _exit_now)
            raise SystemExit(128 + signum)
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
        quiet = self.requested and not _interactive()
        for sig, handler in self._previous.items():
            signal.signal(sig, _exit_now if quiet else handler)
        self._previous.clear()


def _exit_now(signum: int, frame: Any) -> None:
    """End the process at once with 128 + signum, without tracebacks or exit handlers."""
    for tmp in list(_being_written):
        tmp.unlink(missing_ok=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(128 + signum)
