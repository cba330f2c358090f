"""2D navigation, the point-robot task family of the MAML paper (Finn et al., 2017).

A point starts at (0, 0) and moves by its action, clipped to [-0.1, 0.1]^2; the reward is
minus the Euclidean distance to the task's goal after the move; the episode ends when the
point is within 0.01 of the goal on both axes, or after 100 steps. Goals are drawn uniformly
from [low, high]^2 (default [-0.5, 0.5]^2).

`Navigation2DEnv` is the gymnasium environment (`gymlab/Navigation2D-v0`). `NavigationBatch`
(navigation_batch.py, which imports torch; this module does not) is the same dynamics on
torch tensors for many tasks x episodes at once, as the MAML sampler steps them: float32
throughout, the same elementary operations in the same order, so every episode is
bit-identical to the gymnasium environment's under the same actions (tested).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

MAX_ACTION = np.float32(0.1)
GOAL_TOLERANCE = np.float32(0.01)
HORIZON = 100


def sample_goals(n: int, rng: np.random.Generator, low: float = -0.5,
                 high: float = 0.5) -> list[dict[str, Any]]:
    """`n` tasks {"goal": [x, y]} with goals uniform in [low, high]^2."""
    if n < 0:
        raise ValueError(f"the number of tasks must be >= 0, got {n}")
    goals = rng.uniform(low, high, size=(n, 2))
    return [{"goal": [float(x), float(y)]} for x, y in goals]


class Navigation2DEnv(gym.Env):
    """Move a point to a goal in the plane; the goal is the task (`reset_task`)."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, task: dict[str, Any] | None = None, low: float = -0.5,
                 high: float = 0.5, render_mode: str | None = None) -> None:
        if not low < high:
            raise ValueError(f"Navigation2D needs low < high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-0.1, 0.1, shape=(2,), dtype=np.float32)
        self.reset_task(task if task is not None else {"goal": [0.0, 0.0]})
        self._state = np.zeros(2, dtype=np.float32)

    # -- the task API shared by gymlab's task families ------------------------------------------
    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        """`n` tasks drawn from `rng` (the same generator state: the same tasks)."""
        return sample_goals(n, rng, self.low, self.high)

    def reset_task(self, task: dict[str, Any]) -> None:
        """Make `task` the current one; it holds for every episode until the next call."""
        try:
            goal = np.asarray(task["goal"], dtype=np.float32)
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"a Navigation2D task is {{'goal': [x, y]}}, got {task!r}") from None
        if goal.shape != (2,):
            raise ValueError(f"a Navigation2D goal has 2 coordinates, got {task['goal']!r}")
        self.task = {"goal": [float(goal[0]), float(goal[1])]}
        self._goal = goal

    # -- gymnasium ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = np.zeros(2, dtype=np.float32)
        return self._state.copy(), {"task": dict(self.task)}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.clip(np.asarray(action, dtype=np.float32), -MAX_ACTION, MAX_ACTION)
        self._state = self._state + action
        dx = self._state[0] - self._goal[0]
        dy = self._state[1] - self._goal[1]
        reward = -np.sqrt(dx * dx + dy * dy)
        terminated = bool(np.abs(dx) < GOAL_TOLERANCE and np.abs(dy) < GOAL_TOLERANCE)
        return self._state.copy(), float(reward), terminated, False, {"task": dict(self.task)}
