"""Small environments that exercise spaces and failure paths; registered under gymlab_test/."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class DictMultiDiscreteEnv(gym.Env):
    """Dict observation (a Box and a Discrete), MultiDiscrete action. Reward 1 when the first
    action picks the Discrete key's value and the second says whether x[0] > 0; 10 steps.
    The spaces of the network-design environment, in miniature."""

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Dict(
            {"x": gym.spaces.Box(-1.0, 1.0, (3,), np.float32), "k": gym.spaces.Discrete(3)})
        self.action_space = gym.spaces.MultiDiscrete([3, 2])
        self._t = 0

    def _obs(self) -> dict[str, Any]:
        self._state = {"x": self.np_random.uniform(-1, 1, 3).astype(np.float32),
                       "k": int(self.np_random.integers(3))}
        return self._state

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        s = self._state
        reward = float(action[0] == s["k"] and action[1] == int(s["x"][0] > 0))
        self._t += 1
        return self._obs(), reward, False, self._t >= 10, {}


class NaNRewardEnv(gym.Env):
    """A one-state chain whose reward turns NaN after `after` steps."""

    metadata = {"render_modes": []}

    def __init__(self, after: int = 1500, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.after, self.steps = after, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.steps += 1
        reward = float("nan") if self.steps > self.after else 1.0
        return np.zeros(2, np.float32), reward, False, self.steps % 20 == 0, {}


class ContinuousEnv(NaNRewardEnv):
    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__()
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


class DictObservation(gym.ObservationWrapper):
    """CartPole's observation as {"cart": (x, x_dot), "pole": (theta, theta_dot)}."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        box = env.observation_space
        self.observation_space = gym.spaces.Dict({
            "cart": gym.spaces.Box(box.low[:2], box.high[:2], dtype=np.float32),
            "pole": gym.spaces.Box(box.low[2:], box.high[2:], dtype=np.float32)})

    def observation(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {"cart": obs[:2], "pole": obs[2:]}


def make_dict_cartpole(render_mode: str | None = None) -> gym.Env:
    return DictObservation(CartPoleEnv(render_mode=render_mode))


def register() -> None:
    for name, cls in (("DictMultiDiscrete-v0", DictMultiDiscreteEnv),
                      ("NaNReward-v0", NaNRewardEnv), ("Continuous-v0", ContinuousEnv)):
        env_id = f"gymlab_test/{name}"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=cls, max_episode_steps=1000)
    if "gymlab_test/CartPoleDict-v1" not in gym.registry:  # no tuned entry applies to it
        gym.register("gymlab_test/CartPoleDict-v1", entry_point=make_dict_cartpole,
                     max_episode_steps=500)
