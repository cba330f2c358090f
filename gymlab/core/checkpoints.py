"""Atomic checkpoint files, loaded without running code (weights_only), with one-line
errors; which file of a run directory a command acts on."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gymlab.core.errors import (
    CheckpointError,
    CheckpointWriteError,
    CorruptCheckpointError,
)

if TYPE_CHECKING:
    pass

from gymlab.core.run import RunDir

CHECKPOINT_FORMAT = "gymlab-checkpoint-v1"

_being_written: set[Path] = set()
"""Temporary checkpoint files being written, removed if a second signal ends the process."""


def remove_partial_checkpoints() -> None:
    """Delete the temporary files of checkpoints being written (the process is ending)."""
    for tmp in list(_being_written):
        tmp.unlink(missing_ok=True)


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
