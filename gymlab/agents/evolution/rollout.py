"""Lockstep evaluation with compaction: every (network, episode) pair of a population runs as
one slot of a batch; finished episodes leave the batch, so a long time limit costs only what
still runs. Imports no torch (this is what worker processes run)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gymlab.agents.evolution import compiled
from gymlab.agents.evolution.policy import ActionHead, MLPSpec, ObsNorm, PopulationPolicy
from gymlab.agents.evolution.vector_envs import BatchedEnv


class SlotPolicy(Protocol):
    def __call__(self, obs: np.ndarray) -> np.ndarray: ...

    def keep(self, mask: np.ndarray) -> None: ...


class Interrupted(Exception):
    """An evaluation abandoned because the run was asked to stop."""


@dataclass
class Episodes:
    returns: np.ndarray
    """Return of each slot's episode [B]."""
    lengths: np.ndarray
    """Steps of each slot's episode [B]."""
    obs_sum: np.ndarray | None = None
    """Per slot, the sum of the raw observations it acted on [B, n], and of their squares."""
    obs_sq_sum: np.ndarray | None = None


def run_episodes(env: BatchedEnv, seeds: np.ndarray, policy: SlotPolicy,
                 obs_stats: bool = False, stop: Callable[[], bool] | None = None) -> Episodes:
    """One episode per seed, all stepped together; `policy` acts for the slots still running
    and is compacted with them."""
    n = len(seeds)
    obs = env.reset(seeds)
    returns = np.zeros(n)
    lengths = np.zeros(n, dtype=np.int64)
    running = np.arange(n)  # slot ids of the episodes still in the batch
    ret = np.zeros(n)
    sums = sq_sums = acc = acc_sq = None
    if obs_stats:
        sums, sq_sums = np.zeros((n, env.obs_size)), np.zeros((n, env.obs_size))
        acc, acc_sq = np.zeros((n, env.obs_size)), np.zeros((n, env.obs_size))
    t = 0
    while running.size:
        if acc is not None:
            acc += obs
            acc_sq += np.square(obs, dtype=np.float64)
        obs, reward, done = env.step(policy(obs))
        ret += reward
        t += 1
        if done.any():
            ended = running[done]
            returns[ended] = ret[done]
            lengths[ended] = t
            if acc is not None:
                sums[ended], sq_sums[ended] = acc[done], acc_sq[done]  # type: ignore[index]
                keep = ~done
                acc, acc_sq = acc[keep], acc_sq[keep]  # type: ignore[index]
            keep = ~done
            running, ret, obs = running[keep], ret[keep], obs[keep]
            env.keep(keep)
            policy.keep(keep)
        if stop is not None and stop():
            raise Interrupted
    return Episodes(returns, lengths, sums, sq_sums)


@dataclass
class Fitness:
    """What an evaluation of a (sub-)population sends back: no parameters, only results."""

    returns: np.ndarray
    """[P, K] return of each network's K episodes."""
    lengths: np.ndarray
    """[P, K] their lengths in steps."""
    obs_sum: np.ndarray | None = None
    """[P, n] per network, the sum of its raw observations, and of their squares."""
    obs_sq_sum: np.ndarray | None = None

    @property
    def fitness(self) -> np.ndarray:
        """Mean return over each network's episodes."""
        return self.returns.mean(1)

    @property
    def steps(self) -> int:
        return int(self.lengths.sum())

    @classmethod
    def concat(cls, parts: list[Fitness], order: np.ndarray) -> Fitness:
        """Reassemble sub-population results; `order[i]` is the network of joined row i."""
        inverse = np.argsort(order)
        stats = parts[0].obs_sum is not None

        def join(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])[inverse]

        return cls(join("returns"), join("lengths"), join("obs_sum") if stats else None,
                   join("obs_sq_sum") if stats else None)


def evaluate_population(env: BatchedEnv, spec: MLPSpec, head: ActionHead, params: np.ndarray,
                        seeds: np.ndarray, norm: ObsNorm | None = None,
                        obs_stats: bool = False, stop: Callable[[], bool] | None = None,
                        threads: Executor | None = None, jobs: int = 1) -> Fitness:
    """Every network of params [P, D] on the episodes of `seeds` [K] (the same K start states
    for all): P * K slots in lockstep, or on CartPole each episode to its end in compiled code
    (`jobs` shares of the networks on the `threads`)."""
    p, k = len(params), len(seeds)
    if compiled.supports(env, head):
        assert isinstance(env, compiled.CartPoleBatch)
        result = compiled.evaluate_cartpole(env, spec, params, seeds, norm, obs_stats,
                                            threads, jobs, stop)
        if result is None:
            raise Interrupted
        returns, lengths, obs_sum, obs_sq_sum = result
        return Fitness(returns, lengths, obs_sum if obs_stats else None,
                       obs_sq_sum if obs_stats else None)
    individual = np.repeat(np.arange(p), k)
    policy = PopulationPolicy(spec, head, params, individual, norm)
    episodes = run_episodes(env, np.tile(seeds, p), policy, obs_stats, stop)
    fitness = Fitness(episodes.returns.reshape(p, k), episodes.lengths.reshape(p, k))
    if obs_stats:
        assert episodes.obs_sum is not None and episodes.obs_sq_sum is not None
        fitness.obs_sum = episodes.obs_sum.reshape(p, k, -1).sum(1)
        fitness.obs_sq_sum = episodes.obs_sq_sum.reshape(p, k, -1).sum(1)
    return fitness
