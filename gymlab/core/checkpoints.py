"""Atomic checkpoint files, loaded without running code, with one-line errors; which file
of a run directory a command acts on.

Two layouts, both zip archives with checksums, told apart by their entries:

* torch's (`torch.save`), loaded with `torch.load(..., weights_only=True)`: the
  algorithms whose state holds tensors;
* numpy's, for algorithms that never import torch (GA, ES), so that neither writing nor
  reading one costs torch's import: `gymlab.json` holds the payload with every numpy array
  replaced by {"__array__": i}, and `arrays/i.npy` the arrays (read with allow_pickle=False).
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path
from typing import IO, Any, Literal

from gymlab.core.errors import (
    CheckpointError,
    CheckpointWriteError,
    CorruptCheckpointError,
)
from gymlab.core.run import RunDir

CHECKPOINT_FORMAT = "gymlab-checkpoint-v1"
NUMPY_DOCUMENT = "gymlab.json"
"""The entry that makes an archive a numpy-layout checkpoint."""

_being_written: set[Path] = set()
"""Temporary checkpoint files being written, removed if a second signal ends the process."""


def remove_partial_checkpoints() -> None:
    """Delete the temporary files of checkpoints being written (the process is ending)."""
    for tmp in list(_being_written):
        tmp.unlink(missing_ok=True)


def save_checkpoint(path: str | Path, algo: str, payload: dict[str, Any],
                    numpy_only: bool = False) -> None:
    """Write a checkpoint atomically: a crash mid-write leaves the previous file intact. A
    failed write (disk full, permissions) raises CheckpointWriteError (an OSError) with one
    line, after removing its temporary file. `numpy_only`: the numpy layout (a payload of
    numpy arrays, strings, numbers, lists and string-keyed dicts), without torch."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    _being_written.add(tmp)
    document = {"format": CHECKPOINT_FORMAT, "algo": algo, **payload}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            if numpy_only:
                _save_numpy(document, f)
            else:
                import torch

                torch.save(document, f)
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


def _save_numpy(document: dict[str, Any], f: IO[bytes]) -> None:
    import numpy as np

    arrays: list[np.ndarray] = []

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            arrays.append(value)
            return {"__array__": len(arrays) - 1}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value) or "__array__" in value:
                raise TypeError(f"a numpy checkpoint's dict keys are strings, got {list(value)}")
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (str, int, float)):
            return value
        raise TypeError(f"a numpy checkpoint cannot hold a {type(value).__name__}")

    text = json.dumps(encode(document))
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(NUMPY_DOCUMENT, text)
        for i, array in enumerate(arrays):
            with archive.open(f"arrays/{i}.npy", "w") as entry:
                np.lib.format.write_array(entry, np.ascontiguousarray(array),
                                          allow_pickle=False)


def _load_numpy(archive: zipfile.ZipFile) -> Any:
    import numpy as np

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if "__array__" in value:
                with archive.open(f"arrays/{int(value['__array__'])}.npy") as entry:
                    return np.lib.format.read_array(entry, allow_pickle=False)
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(json.loads(archive.read(NUMPY_DOCUMENT)))


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
    (weights_only, or numpy's allow_pickle=False), with one-line errors."""
    path = Path(path)
    if path.is_dir():
        path = checkpoint_for(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    problem = _archive_problem(path)
    if problem is not None:  # not unpickled at all: damage, not a security question
        raise CorruptCheckpointError(f"checkpoint {path} is truncated or corrupt ({problem})")
    try:
        with zipfile.ZipFile(path) as archive:
            numpy_layout = NUMPY_DOCUMENT in archive.namelist()
            data = _load_numpy(archive) if numpy_layout else None
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise CorruptCheckpointError(
            f"checkpoint {path} is truncated or corrupt ({_first_line(exc)})") from None
    if numpy_layout:
        return _checked(data, path, algo)
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptCheckpointError(
            f"checkpoint {path} is truncated or corrupt ({_first_line(exc)})") from None
    except Exception as exc:  # the weights-only unpickler refuses code: a crafted file
        raise CheckpointError(
            f"checkpoint {path} cannot be read safely ({type(exc).__name__}: it asks to run "
            "code or build objects a checkpoint does not hold)") from None
    return _checked(data, path, algo)


def _checked(data: Any, path: Path, algo: str | None) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gymlab checkpoint")
    if algo is not None and data["algo"] != algo:
        raise CheckpointError(f"{path} is a {data['algo']} checkpoint, not {algo}")
    return data
