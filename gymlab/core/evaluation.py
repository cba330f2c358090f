"""Deterministic evaluation of a policy over N episodes, all stepped in lockstep."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gymlab.core.envs import make_env
from gymlab.core.spaces import ObservationEncoder

BatchPolicy = Callable[[np.ndarray], np.ndarray]
"""Maps encoded observations [B, obs_size] to actions [B, ...]."""


@dataclass(frozen=True)
class EvalResult:
    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f} over {len(self.returns)} episodes"


class Evaluator:
    """Runs `episodes` episodes at once, one environment each, batching the policy's forward
    passes over the episodes still running. Episode i is always seeded `seed + i`, so every
    evaluation of a run sees the same start states and results are comparable."""

    def __init__(self, env_id: str, episodes: int, seed: int,
                 env_kwargs: dict[str, Any] | None = None) -> None:
        self.envs = [make_env(env_id, kwargs=env_kwargs) for _ in range(episodes)]
        self.encoder = ObservationEncoder(self.envs[0].observation_space)
        self.seed = seed

    def __call__(self, policy: BatchPolicy) -> EvalResult:
        n = len(self.envs)
        obs = np.stack(
            [self.encoder(env.reset(seed=self.seed + i)[0]) for i, env in enumerate(self.envs)]
        )
        returns = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        running = np.arange(n)
        while len(running):
            actions = policy(obs[running])
            still = []
            for j, i in enumerate(running):
                o, r, term, trunc, _ = self.envs[i].step(actions[j])
                returns[i] += float(r)
                lengths[i] += 1
                if not (term or trunc):
                    obs[i] = self.encoder(o)
                    still.append(i)
            running = np.asarray(still, dtype=np.int64)
        return EvalResult(returns, lengths)

    def close(self) -> None:
        for env in self.envs:
            env.close()
