"""Candidates trained in parallel: local worker processes, one torch thread each."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from gymlab.envs.nas.datasets import Dataset
from gymlab.envs.nas.search_space import SearchSpace
from gymlab.envs.nas.trainer import CandidateResult, TrainSettings, train_candidate

_worker: dict[str, Any] = {}


def _init(space: SearchSpace, data: Dataset, settings: TrainSettings) -> None:
    import torch

    torch.set_num_threads(1)
    _worker.update(space=space, data=data, settings=settings)


def _train(ids: list[int]) -> CandidateResult:
    return train_candidate(ids, _worker["space"], _worker["data"], _worker["settings"])


def usable_workers(requested: int) -> int:
    """`requested`, clamped to the CPUs this process may use (with a warning)."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    if requested > available:
        print(f"warning: --workers {requested} > {available} CPUs here; using {available}",
              file=sys.stderr)
        return available
    return requested


class CandidatePool:
    """A pool of worker processes that each hold the dataset and train candidates.
    With one worker, candidates train in this process (no start-up cost)."""

    def __init__(self, workers: int, space: SearchSpace, data: Dataset,
                 settings: TrainSettings) -> None:
        self.workers = workers
        self.space, self.data, self.settings = space, data, settings
        self.executor = None
        if workers > 1:
            # spawn, not fork: a forked torch with threads already started can deadlock
            self.executor = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                initargs=(space, data, settings))

    def map(self, batch: Sequence[list[int]]) -> list[CandidateResult]:
        if self.executor is None:
            return [train_candidate(ids, self.space, self.data, self.settings) for ids in batch]
        return list(self.executor.map(_train, batch))

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def __enter__(self) -> CandidatePool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
