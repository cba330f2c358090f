"""MuJoCo task families for meta-RL: HalfCheetah and Ant velocity, direction and goal position.

Each family is one of gymnasium's MuJoCo v5 environments (HalfCheetah-v5, Ant-v5; the
`mujoco` extra, no mujoco-py) whose reward depends on a *task*, as in the MAML paper (Finn et
al., 2017) and pytorch-maml-rl. The task API the meta-learners use:

- ``env.sample_tasks(n, rng) -> list[dict]``: ``n`` tasks drawn from ``rng`` (a
  ``np.random.Generator``) only, so the same seed gives the same tasks;
- ``env.reset_task(task)``: the reward of the following steps is the new task's (the
  simulator state is left alone, as in the reference); also ``env.task = task``, which
  vector envs reach per sub-env with ``envs.set_attr("task", tasks)``;
- ``gym.make(id, task=...)`` sets the first task; ``info["task"]`` says which task a step
  was scored on.

The forward velocity is the torso's x displacement over ``dt`` (5 substeps of 0.01 s), read
from the root joint's ``qpos``, which *is* the torso's position in both models (tested
against ``data.body("torso").xpos``). Observations are gymnasium v5's (17-d HalfCheetah,
105-d Ant); the reference appended the torso's centre of mass (and for Ant its rotation
matrix) and built 20-d and 125-d ones. The horizon is the registered ``max_episode_steps``:
200 as in the MAML paper (pytorch-maml-rl's configs use 100: ``gym.make(id,
max_episode_steps=100)``).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import EzPickle

try:  # the base classes import mujoco; without it the classes still import, and refuse to build
    from gymnasium.envs.mujoco.ant_v5 import AntEnv as _AntV5
    from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv as _HalfCheetahV5
except (ImportError, OSError, gym.error.DependencyNotInstalled):
    _AntV5 = _HalfCheetahV5 = gym.Env  # type: ignore[assignment,misc]

MUJOCO_INSTALL_HINT = (
    'the MuJoCo task families need the `mujoco` extra: pip install -e ".[mujoco]" '
    '(in a gymlab checkout) or pip install "gymlab[mujoco]"'
)

__all__ = ["AntDir", "AntPos", "AntVel", "HalfCheetahDir", "HalfCheetahVel", "require_mujoco"]


def require_mujoco() -> None:
    """Raise ValueError (one line: how to install the extra) when mujoco cannot be imported."""
    try:
        importlib.import_module("mujoco")
    except (ImportError, OSError):
        raise ValueError(MUJOCO_INSTALL_HINT) from None


class _TaskFamily:
    """What the five families share: the task, its validation, sampling and switching."""

    task_key: str  # the one key of a task dict: "velocity", "direction" or "goal"
    _task: dict[str, Any]

    def default_task(self) -> dict[str, Any]:
        """The task used when none is given (the reference's: velocity 0, direction +1,
        goal at the origin)."""
        raise NotImplementedError

    def _draw(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _check_value(self, value: Any) -> Any:
        raise NotImplementedError

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        """``n`` tasks of this family drawn from ``rng`` alone (same seed, same tasks)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"sample_tasks needs an np.random.Generator, got {type(rng).__name__}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"sample_tasks needs a number of tasks n >= 0, got {n!r}")
        return self._draw(int(n), rng)

    def reset_task(self, task: dict[str, Any]) -> None:
        """Score the following steps on ``task`` (a dict with this family's one key)."""
        name = type(self).__name__
        if not isinstance(task, dict) or set(task) != {self.task_key}:
            raise ValueError(f"{name} tasks are dicts with the one key {self.task_key!r}, "
                             f"got {task!r}")
        self._task = {self.task_key: self._check_value(task[self.task_key])}
        self._ezpickle_kwargs["task"] = self._task  # a pickled copy keeps the current task

    @property
    def task(self) -> dict[str, Any]:
        """A copy of the current task (assign one to switch tasks, as ``reset_task`` does)."""
        return self._task_info()

    @task.setter
    def task(self, task: dict[str, Any]) -> None:
        self.reset_task(task)

    def _task_info(self) -> dict[str, Any]:
        # A fresh copy per call: gymnasium's checker (rightly) wants infos that share nothing.
        return self._task.copy()

    def _get_reset_info(self) -> dict[str, Any]:
        return {**super()._get_reset_info(), "task": self._task_info()}  # type: ignore[misc]


class _Velocity(_TaskFamily):
    task_key = "velocity"
    velocity_range: tuple[float, float]

    def default_task(self) -> dict[str, Any]:
        return {"velocity": 0.0}

    def _draw(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        low, high = self.velocity_range
        return [{"velocity": float(v)} for v in rng.uniform(low, high, size=n)]

    def _check_value(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) \
                or not np.isfinite(value):
            raise ValueError(f"a goal velocity is a finite number, got {value!r}")
        return float(value)

    def _forward_reward(self, x_velocity: float) -> float:
        return -abs(x_velocity - self._task["velocity"])


class _Direction(_TaskFamily):
    task_key = "direction"

    def default_task(self) -> dict[str, Any]:
        return {"direction": 1}

    def _draw(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        return [{"direction": int(d)} for d in 2 * rng.integers(0, 2, size=n) - 1]

    def _check_value(self, value: Any) -> int:
        if isinstance(value, bool) or value not in (-1, 1):
            raise ValueError(f"a direction is -1 (backward) or +1 (forward), got {value!r}")
        return int(value)

    def _forward_reward(self, x_velocity: float) -> float:
        return self._task["direction"] * x_velocity


class _HalfCheetah(_HalfCheetahV5):  # type: ignore[misc,valid-type]
    """HalfCheetah-v5 scored on a task: reward = task term − ctrl_cost_weight · Σa²."""

    def __init__(self, task: dict[str, Any] | None = None, ctrl_cost_weight: float = 0.05,
                 **kwargs: Any) -> None:
        require_mujoco()
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        # Pickling rebuilds the env from these (the base recorded its own positional ones).
        EzPickle.__init__(self, task=task, ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        self.reset_task(self.default_task() if task is None else task)  # type: ignore[attr-defined]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        x_before = self.data.qpos[0]  # the rootx slide joint: the torso's x
        self.do_simulation(action, self.frame_skip)
        x_after = self.data.qpos[0]
        x_velocity = (x_after - x_before) / self.dt
        forward = self._forward_reward(x_velocity)  # type: ignore[attr-defined]
        ctrl_cost = self.control_cost(action)
        info = {"x_position": x_after, "x_velocity": x_velocity, "reward_forward": forward,
                "reward_ctrl": -ctrl_cost, "task": self._task_info()}  # type: ignore[attr-defined]
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), float(forward - ctrl_cost), False, False, info


class _Ant(_AntV5):  # type: ignore[misc,valid-type]
    """Ant-v5 scored on a task: reward = task term + reward_offset + survive bonus
    − control cost − contact cost, with the MAML paper's weights (control 0.005 · Σa²,
    contact 5e-4 · Σ clip(cfrc_ext, −1, 1)², survive 0.05) instead of Ant-v5's (0.5, 5e-4,
    1.0); the episode ends when the torso leaves z ∈ [0.2, 1.0], as in both."""

    reward_offset: float = 0.0

    def __init__(self, task: dict[str, Any] | None = None, ctrl_cost_weight: float = 5e-3,
                 contact_cost_weight: float = 5e-4, healthy_reward: float = 0.05,
                 reward_offset: float | None = None, **kwargs: Any) -> None:
        require_mujoco()
        super().__init__(ctrl_cost_weight=ctrl_cost_weight,
                         contact_cost_weight=contact_cost_weight,
                         healthy_reward=healthy_reward, **kwargs)
        if reward_offset is not None:
            self.reward_offset = float(reward_offset)
        EzPickle.__init__(self, task=task, ctrl_cost_weight=ctrl_cost_weight,
                          contact_cost_weight=contact_cost_weight, healthy_reward=healthy_reward,
                          reward_offset=reward_offset, **kwargs)
        self.reset_task(self.default_task() if task is None else task)  # type: ignore[attr-defined]

    def _task_reward(self, xy: np.ndarray, xy_velocity: np.ndarray) -> float:
        return self._forward_reward(xy_velocity[0])  # type: ignore[attr-defined]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        xy_before = self.data.qpos[:2].copy()  # the free joint's position: the torso's xy
        self.do_simulation(action, self.frame_skip)
        xy = self.data.qpos[:2].copy()
        xy_velocity = (xy - xy_before) / self.dt
        task_reward = self._task_reward(xy, xy_velocity) + self.reward_offset
        healthy = self.is_healthy
        survive = self._healthy_reward * healthy
        ctrl_cost = self.control_cost(action)
        contact_cost = self.contact_cost
        info = {"x_position": xy[0], "y_position": xy[1], "x_velocity": xy_velocity[0],
                "y_velocity": xy_velocity[1], "reward_task": task_reward,
                "reward_ctrl": -ctrl_cost, "reward_contact": -contact_cost,
                "reward_survive": survive, "task": self._task_info()}  # type: ignore[attr-defined]
        if self.render_mode == "human":
            self.render()
        reward = task_reward + survive - ctrl_cost - contact_cost
        terminated = (not healthy) and self._terminate_when_unhealthy
        return self._get_obs(), float(reward), terminated, False, info


class HalfCheetahVel(_Velocity, _HalfCheetah):
    """HalfCheetah running at a goal velocity: reward −|v − v_goal| − 0.05·Σa²,
    v_goal ~ U[0, 2]; tasks ``{"velocity": v_goal}``."""

    velocity_range = (0.0, 2.0)


class HalfCheetahDir(_Direction, _HalfCheetah):
    """HalfCheetah running forward or backward: reward d·v − 0.05·Σa², d ∈ {−1, +1} with
    equal odds; tasks ``{"direction": d}``."""


class AntVel(_Velocity, _Ant):
    """Ant running at a goal velocity along x: task term −|v − v_goal| + 1 (the reference's
    offset, which keeps living worth more than falling), v_goal ~ U[0, 3]; tasks
    ``{"velocity": v_goal}``."""

    velocity_range = (0.0, 3.0)
    reward_offset = 1.0


class AntDir(_Direction, _Ant):
    """Ant running forward or backward along x: task term d·v, d ∈ {−1, +1} with equal odds;
    tasks ``{"direction": d}``."""


class AntPos(_TaskFamily, _Ant):
    """Ant walking to a goal position: task term −‖xy − goal‖₁ + 4 (the reference's offset),
    goal ~ U[−3, 3]²; tasks ``{"goal": np.array([x, y])}``."""

    task_key = "goal"
    goal_range = (-3.0, 3.0)
    reward_offset = 4.0

    def default_task(self) -> dict[str, Any]:
        return {"goal": np.zeros(2)}

    def _draw(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        low, high = self.goal_range
        return [{"goal": goal} for goal in rng.uniform(low, high, size=(n, 2))]

    def _check_value(self, value: Any) -> np.ndarray:
        try:
            goal = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            goal = np.empty(0)
        if goal.shape != (2,) or not np.isfinite(goal).all():
            raise ValueError(f"a goal is a finite (x, y) pair, got {value!r}")
        goal.setflags(write=False)  # env.task hands out this array: nobody moves the goal
        return goal

    def _task_info(self) -> dict[str, Any]:
        return {"goal": self._task["goal"].copy()}

    def _task_reward(self, xy: np.ndarray, xy_velocity: np.ndarray) -> float:
        return -float(np.abs(xy - self._task["goal"]).sum())
