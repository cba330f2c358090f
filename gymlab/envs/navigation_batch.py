"""`NavigationBatch`: 2D navigation (gymlab.envs.navigation) for many tasks x episodes at once,
on torch tensors, as the MAML sampler steps it; bit-identical to `Navigation2DEnv` step by
step (tested)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gymlab.envs.navigation import GOAL_TOLERANCE, HORIZON, MAX_ACTION


class NavigationBatch:
    """Navigation2D for K tasks x B episodes in one tensor program.

    `reset(tasks, episodes)` starts B episodes of each task; `step(actions [K, B, 2])` moves
    every point and returns observations [K, B, 2], rewards [K, B] and done [K, B] (reached
    the goal, or the 100-step limit). Finished episodes keep being stepped; the sampler masks
    them out, which is cheaper than compacting a batch this small.
    """

    obs_size = 2

    def __init__(self, device: str | torch.device = "cpu",
                 max_episode_steps: int = HORIZON) -> None:
        self.device = torch.device(device)
        self.max_episode_steps = max_episode_steps
        self.max_action = torch.tensor(MAX_ACTION, device=self.device)
        self.tolerance = torch.tensor(GOAL_TOLERANCE, device=self.device)
        self.goals = torch.zeros(0, 1, 2, device=self.device)
        self.state = torch.zeros(0, 0, 2, device=self.device)
        self.t = 0

    def reset(self, tasks: list[dict[str, Any]], episodes: int,
              seeds: np.ndarray | None = None) -> torch.Tensor:
        """Observations [K, B, 2] of B fresh episodes per task (the start is fixed: no seed)."""
        goals = np.array([task["goal"] for task in tasks], dtype=np.float32).reshape(-1, 1, 2)
        self.goals = torch.from_numpy(goals).to(self.device)
        self.state = torch.zeros(len(tasks), episodes, 2, device=self.device)
        self.t = 0
        return self.state.clone()

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        actions = torch.minimum(torch.maximum(actions.float(), -self.max_action),
                                self.max_action)
        self.state = self.state + actions
        delta = self.state - self.goals
        dx, dy = delta[..., 0], delta[..., 1]
        # torch's float32 sqrt is not always correctly rounded (numpy's is); in float64 and
        # rounded back it is, so the rewards are numpy's bit for bit
        reward = -torch.sqrt((dx * dx + dy * dy).double()).float()
        done = (dx.abs() < self.tolerance) & (dy.abs() < self.tolerance)
        self.t += 1
        if self.t >= self.max_episode_steps:
            done = torch.ones_like(done)
        return self.state.clone(), reward, done

    def close(self) -> None:
        pass
