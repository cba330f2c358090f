"""Finding what a command acts on: a run directory's checkpoint, and the algorithm in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gymlab.core.errors import CheckpointError, UserError


def checkpoint_file(run_or_file: str, which: str, algo: str | None = None) -> Path:
    """The checkpoint a command acts on (core.checkpoints.checkpoint_for: the file itself, or a run
    directory's best.pt, else last.pt); `algo`: a run directory must hold a run of it."""
    from gymlab.core.checkpoints import checkpoint_for
    from gymlab.core.run import RunDir

    path = Path(run_or_file)
    if algo is not None and path.is_dir():
        found = RunDir.open(path).config().get("algo")
        if found != algo:
            raise UserError(f"{path} is a {found} run, not a {algo} run")
    return checkpoint_for(path, which)  # type: ignore[arg-type]


def load_algorithm(run_or_file: str, which: str) -> tuple[Any, Path]:
    """The trained algorithm from a run directory or checkpoint file, and the file it came
    from; whichever algorithm the checkpoint names."""
    from gymlab.core.checkpoints import load_checkpoint
    from gymlab.registry import ALGORITHMS, algorithm

    path = checkpoint_file(run_or_file, which)
    algo = load_checkpoint(path)["algo"]
    if algo not in ALGORITHMS:
        raise CheckpointError(f"{path} is a checkpoint of an unknown algorithm {algo!r}")
    return algorithm(algo).load(path, progress=False), path
