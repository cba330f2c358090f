"""Candidates trained in parallel: local worker processes or Ray actors, one torch thread
each (and, on CUDA, one GPU per Ray actor). Every candidate's training is seeded by itself,
so where it runs never changes it."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from gymlab.core.processes import worker_pool
from gymlab.nas.datasets import Dataset
from gymlab.nas.search_space import SearchSpace
from gymlab.nas.trainer import CandidateResult, TrainSettings, train_candidate

_worker: dict[str, Any] = {}


def _init(space: SearchSpace, data: Dataset, settings: TrainSettings,
          device: str = "cpu") -> None:
    import torch

    torch.set_num_threads(1)
    # moved once per worker: every candidate it trains then indexes device tensors
    _worker.update(space=space, data=data.on(device), settings=settings)


def _train(ids: list[int], settings: TrainSettings | None = None) -> CandidateResult:
    return train_candidate(ids, _worker["space"], _worker["data"],
                           settings or _worker["settings"])


class _RayTrainer:
    """A Ray actor that holds the dataset (on its GPU with device cuda) and trains
    candidates, one torch thread."""

    def __init__(self, space: SearchSpace, data: Dataset, settings: TrainSettings,
                 device: str = "cpu") -> None:
        _init(space, data, settings, device)

    def train(self, ids: list[int], settings: TrainSettings | None = None) -> CandidateResult:
        return _train(ids, settings)


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
    """Workers that each hold the dataset and train candidates: with `ray_address`, that
    many Ray actors ("local" starts Ray here; HOST:PORT or "auto" joins a cluster); else
    local processes, and with one worker candidates train in this process (no start-up
    cost). With `device` cuda, each worker trains on the GPU (a Ray actor asks for one GPU
    of its own); `data` is in host memory and each worker moves it there once."""

    def __init__(self, workers: int, space: SearchSpace, data: Dataset,
                 settings: TrainSettings, ray_address: str | None = None,
                 device: str = "cpu") -> None:
        self.workers, self.device = workers, device
        self.host_data = data
        self.space, self.settings = space, settings
        # trains here only without workers; workers move their own copy
        self.data = data.on(device) if ray_address is None and workers <= 1 else data
        self.executor: ProcessPoolExecutor | None = None
        self.actors: Any = None
        self.ray_session: Any = None
        if ray_address is not None:
            self._start_actors(ray_address)
        elif workers > 1:  # spawned processes that end with this one, even after kill -9
            self.executor = worker_pool(workers, _init, (space, data, settings, device))

    def _start_actors(self, address: str) -> None:
        from gymlab.core.ray import RaySession, check_ray_address

        check_ray_address(address)
        from ray.util import ActorPool

        self.ray_session = RaySession(None if address == "local" else address, 1)
        cpus = self.ray_session.__enter__()
        import ray

        gpus = self.device == "cuda"
        available = int(ray.cluster_resources().get("GPU", 0)) if gpus else cpus
        what = "GPUs" if gpus else "CPUs"
        if self.workers > available:
            print(f"warning: --workers {self.workers} > {available} {what} in the Ray cluster;"
                  f" using {available}", file=sys.stderr)
            self.workers = max(1, available)
        trainer = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0)(_RayTrainer)
        data_ref = ray.put(self.host_data)  # one copy in the object store, not one per actor
        self.actors = ActorPool([trainer.remote(self.space, data_ref, self.settings,
                                                self.device)
                                 for _ in range(self.workers)])

    def map(self, batch: Sequence[list[int]],
            settings: TrainSettings | None = None) -> list[CandidateResult]:
        """Train every network of `batch` (with `settings`, else the pool's): results in
        order."""
        if self.actors is not None:
            return list(self.actors.map(lambda actor, ids: actor.train.remote(ids, settings),
                                        batch))
        if self.executor is None:
            return [train_candidate(ids, self.space, self.data, settings or self.settings)
                    for ids in batch]
        return list(self.executor.map(_train, batch, [settings] * len(batch)))

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
        if self.ray_session is not None:
            self.actors = None
            self.ray_session.__exit__()
            self.ray_session = None

    def __enter__(self) -> CandidatePool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
