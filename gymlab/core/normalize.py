"""Running normalisation of observations and rewards, saved with the agent."""

from __future__ import annotations

from typing import Any

import numpy as np


class RunningMeanStd:
    """Mean and variance of a stream of batches (parallel algorithm of Chan et al.)."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        self.update_from_moments(batch.mean(0), batch.var(0), batch.shape[0])

    def update_from_moments(self, b_mean: np.ndarray, b_var: np.ndarray, b_count: float) -> None:
        """Merge a batch given by its mean, variance and size."""
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        import torch  # here, so that GA/ES runs that never checkpoint torch tensors skip its import

        return {"mean": torch.from_numpy(np.array(self.mean)),
                "var": torch.from_numpy(np.array(self.var)), "count": float(self.count)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var = state["mean"].numpy().copy(), state["var"].numpy().copy()
        self.count = float(state["count"])


class ObsNormalizer:
    """Observations scaled to zero mean and unit variance, clipped to ±clip."""

    def __init__(self, size: int, enabled: bool, clip: float = 10.0) -> None:
        self.enabled, self.clip = enabled, clip
        self.stats = RunningMeanStd((size,))

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        if not self.enabled:
            return obs
        if update:
            self.stats.update(obs)
        out = (obs - self.stats.mean) / np.sqrt(self.stats.var + 1e-8)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)


class RewardScaler:
    """Rewards divided by the running std of the discounted return (as SB3's VecNormalize)."""

    def __init__(self, num_envs: int, gamma: float, enabled: bool, clip: float = 10.0) -> None:
        self.enabled, self.gamma, self.clip = enabled, gamma, clip
        self.stats = RunningMeanStd()
        self.returns = np.zeros(num_envs)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return rewards
        self.returns = self.returns * self.gamma + rewards
        self.stats.update(self.returns)
        self.returns[dones] = 0.0
        scaled = rewards / np.sqrt(self.stats.var + 1e-8)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        import torch

        return {**self.stats.state_dict(), "returns": torch.from_numpy(self.returns.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats.load_state_dict(state)
        self.returns = state["returns"].numpy().copy()
