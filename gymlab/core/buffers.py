"""Replay storage for off-policy agents."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gymlab.core.seeding import generator_state, set_generator_state


class ReplayBuffer:
    """A ring buffer of transitions in preallocated numpy arrays, sampled uniformly.

    `terminated` is stored, not `truncated`: a transition cut by a time limit still
    bootstraps from its (real, final) next observation.
    """

    def __init__(self, capacity: int, obs_size: int, action_dims: int, seed: int) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_size), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_size), dtype=np.float32)
        self.actions = np.zeros((capacity, action_dims), dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            next_obs: np.ndarray, terminated: np.ndarray) -> None:
        """Add one transition per parallel environment (leading dimension N)."""
        n = len(obs)
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx] = obs
        self.actions[idx] = actions
        self.rewards[idx] = rewards
        self.next_obs[idx] = next_obs
        self.terminated[idx] = terminated
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """obs, actions, rewards, next_obs, terminated as tensors with `batch_size` rows."""
        idx = self.rng.integers(0, self.size, batch_size)
        return (
            torch.from_numpy(self.obs[idx]),
            torch.from_numpy(self.actions[idx]),
            torch.from_numpy(self.rewards[idx]),
            torch.from_numpy(self.next_obs[idx]),
            torch.from_numpy(self.terminated[idx]),
        )

    def state_dict(self, with_data: bool = True) -> dict[str, Any]:
        state: dict[str, Any] = {"rng": generator_state(self.rng), "pos": self.pos,
                                 "size": self.size if with_data else 0}
        if with_data:
            n = self.size
            for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
                state[name] = torch.from_numpy(getattr(self, name)[:n].copy())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_generator_state(self.rng, state["rng"])
        self.size = int(state["size"])
        self.pos = int(state["pos"]) if self.size else 0
        for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
            if name in state:
                getattr(self, name)[: self.size] = state[name].numpy()
