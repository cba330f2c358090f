"""Fitness of a population, in this process, in worker threads or processes, or on a Ray
cluster.

CartPole populations run in the compiled kernel (compiled.py), which releases the GIL: with
W workers, shares of the networks run on W threads of this process. Otherwise the population
is dealt round-robin into sub-populations (network i to part i % W, which spreads the
long-lived networks of a generation evenly); each part is evaluated in lockstep where it
lands, and only parameters, episode seeds and the normalisation statistics go out, only
returns, lengths and observation sums come back. A network's results do not depend on which
part or share it was in (slots never mix), so they do not depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np

from gymlab.agents.evolution import compiled
from gymlab.agents.evolution.policy import ActionHead, MLPSpec, ObsNorm
from gymlab.agents.evolution.rollout import Fitness, evaluate_population
from gymlab.agents.evolution.vector_envs import BatchedEnv, make_batched_env
from gymlab.core.processes import worker_pool

_envs: dict[str, BatchedEnv] = {}


def evaluate_part(env_id: str, env_kwargs: dict[str, Any], spec: MLPSpec, head: ActionHead,
                  params: np.ndarray, seeds: np.ndarray,
                  norm: tuple[np.ndarray, np.ndarray] | None, obs_stats: bool) -> Fitness:
    """A worker's job: evaluate a sub-population (its environments kept between calls)."""
    key = f"{env_id}|{sorted(env_kwargs.items())}"
    if key not in _envs:
        _envs[key] = make_batched_env(env_id, env_kwargs)
    obs_norm = ObsNorm(*norm) if norm is not None else None
    return evaluate_population(_envs[key], spec, head, params, seeds, obs_norm, obs_stats)


class PopulationEvaluator:
    """`evaluator(params, seeds, norm, obs_stats, stop)` -> Fitness of every row of params.
    With W > 1 workers, this process evaluates one part and W - 1 processes the others;
    with a Ray address, Ray tasks evaluate all W parts (W: the cluster's CPUs if 1 is asked)."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], spec: MLPSpec,
                 head: ActionHead, workers: int = 1, ray_address: str | None = None) -> None:
        self.env_id, self.env_kwargs, self.spec, self.head = env_id, env_kwargs, spec, head
        self.workers, self.ray_address = workers, ray_address
        self.env: BatchedEnv | None = None
        self.pool: ProcessPoolExecutor | None = None
        self.threads: ThreadPoolExecutor | None = None
        self.ray_session: Any = None
        self.remote: Any = None

    def __enter__(self) -> PopulationEvaluator:
        if self.ray_address is not None:
            self._start_ray()
        else:
            self.env = make_batched_env(self.env_id, self.env_kwargs)
            if self.workers > 1 and compiled.supports(self.env, self.head):
                # the compiled kernel releases the GIL: threads, and no process start-up
                self.threads = ThreadPoolExecutor(self.workers)
            elif self.workers > 1:
                # the worker side imports numpy and gymnasium only, not torch; the workers
                # end with this process, even when it is killed
                self.pool = worker_pool(self.workers - 1)
        return self

    def _start_ray(self) -> None:
        import ray

        from gymlab.core.ray import RaySession

        address = None if self.ray_address == "local" else self.ray_address
        self.ray_session = RaySession(address, 1)
        cpus = self.ray_session.__enter__()
        if self.workers == 1:
            self.workers = max(cpus, 1)
        self.remote = ray.remote(num_cpus=1)(evaluate_part)

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        if self.threads is not None:
            self.threads.shutdown(cancel_futures=True)
            self.threads = None
        if self.env is not None:
            self.env.close()
            self.env = None
        if self.ray_session is not None:
            self.ray_session.__exit__()
            self.ray_session = None

    def __call__(self, params: np.ndarray, seeds: np.ndarray,
                 norm: tuple[np.ndarray, np.ndarray] | None = None, obs_stats: bool = False,
                 stop: Callable[[], bool] | None = None) -> Fitness:
        parts = min(self.workers, len(params))
        if (parts == 1 or self.threads is not None) and self.remote is None:
            assert self.env is not None
            return evaluate_population(self.env, self.spec, self.head, params, seeds,
                                       ObsNorm(*norm) if norm is not None else None,
                                       obs_stats, stop, self.threads, self.workers)
        index = [np.arange(i, len(params), parts) for i in range(parts)]
        job = (self.env_id, self.env_kwargs, self.spec, self.head)
        if self.remote is not None:
            import ray

            refs = [self.remote.remote(*job, params[ix], seeds, norm, obs_stats) for ix in index]
            results = ray.get(refs)
        else:
            assert self.pool is not None and self.env is not None
            futures: list[Future[Fitness]] = [
                self.pool.submit(evaluate_part, *job, params[ix], seeds, norm, obs_stats)
                for ix in index[1:]]
            try:
                first = evaluate_population(self.env, self.spec, self.head, params[index[0]],
                                            seeds, ObsNorm(*norm) if norm is not None else None,
                                            obs_stats, stop)
            finally:
                others = [f.result() for f in futures]
            results = [first, *others]
        return Fitness.concat(results, np.concatenate(index))
