"""Finding what a command acts on: a run directory's checkpoint, and the algorithm in it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gymlab.core.errors import CheckpointError, UserError


def checkpoint_file(run_or_file: str, which: str, algo: str | None = None) -> Path:
    """The checkpoint a command acts on: the file itself, or a run directory's `which`
    checkpoint (best.pt falls back to last.pt, with a note); `algo`: the run must be one."""
    from gymlab.core.run import RunDir

    path = Path(run_or_file)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if not path.is_dir():
        return path
    run = RunDir.open(path)
    if algo is not None and run.config().get("algo") != algo:
        raise UserError(f"{path} is a {run.config().get('algo')} run, not a {algo} run")
    try:
        from gymlab.core.run import checkpoint_for  # type: ignore[attr-defined]
    except ImportError:
        return _checkpoint_of(run, which)
    return checkpoint_for(path, which)


def _checkpoint_of(run: Any, which: str) -> Path:
    file = run.checkpoint(which)
    if not file.exists() and which == "best" and run.checkpoint("last").exists():
        print(f"note: {run.path} has no best.pt yet; using last.pt", file=sys.stderr)
        file = run.checkpoint("last")
    if not file.exists():
        raise CheckpointError(f"{run.path} has no checkpoint ({file} is missing)")
    return file


def load_algorithm(run_or_file: str, which: str) -> tuple[Any, Path]:
    """The trained algorithm from a run directory or checkpoint file, and the file it came
    from; whichever algorithm the checkpoint names."""
    from gymlab.core.run import load_checkpoint
    from gymlab.registry import ALGORITHMS, algorithm

    path = checkpoint_file(run_or_file, which)
    algo = load_checkpoint(path)["algo"]
    if algo not in ALGORITHMS:
        raise CheckpointError(f"{path} is a checkpoint of an unknown algorithm {algo!r}")
    return algorithm(algo).load(path, progress=False), path
