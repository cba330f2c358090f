"""Environments stepped as one batch whose finished episodes can be dropped (compaction).

`reset(seeds)` starts one episode per seed; `step(actions)` steps every running episode and
says which ended; `keep(mask)` drops the others, so the next step costs only what still runs.

gymnasium's native CartPoleVectorEnv cannot do that: it has a fixed number of slots, resets
finished ones itself on the next call, and has one generator for all of them (no per-episode
seed). `CartPoleBatch` is CartPole's dynamics on [4, B] arrays instead, with gymnasium's
float64 operations in gymnasium's order, so every episode is bit-identical to
`gym.make("CartPole-v1")` reset with the same seed (tested). Any other environment runs as a
list of gymnasium environments (`EnvListBatch`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from gymlab.core.envs import make_env, registered_id
from gymlab.core.spaces import ObservationEncoder

CARTPOLE_ENTRY_POINT = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"


class BatchedEnv(Protocol):
    obs_size: int

    def reset(self, seeds: np.ndarray) -> np.ndarray:
        """Start one episode per seed; observations [B, obs_size] float32."""

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray | float, np.ndarray]:
        """Observations, rewards (an array, or one float shared by all) and done
        (terminated or truncated) of every running episode."""

    def keep(self, mask: np.ndarray) -> None:
        """Drop the episodes where `mask` is False."""

    def close(self) -> None: ...


class CartPoleBatch:
    """CartPole-v0/v1 (no keyword arguments) for many episodes at once."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masspole + masscart
    polemass_length = masspole * length
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4
    obs_size = 4

    def __init__(self, max_episode_steps: int) -> None:
        self.max_episode_steps = max_episode_steps
        self.state = np.zeros((4, 0))
        self.t = 0
        self.starts: dict[int, np.ndarray] = {}  # evaluation episodes repeat their seeds

    def reset(self, seeds: np.ndarray) -> np.ndarray:
        if len(self.starts) > 100_000:
            self.starts.clear()
        for seed in set(seeds.tolist()) - self.starts.keys():
            rng, _ = seeding.np_random(seed)  # what CartPoleEnv.reset(seed=seed) draws
            self.starts[seed] = rng.uniform(low=-0.05, high=0.05, size=(4,))
        self.state = np.array([self.starts[s] for s in seeds.tolist()]).T.copy()
        self.t = 0
        return self.state.T.astype(np.float32)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        # gymnasium's CartPoleEnv.step, written with as few numpy calls as its order allows
        # (populations run in compiled.py's kernel, which is tested equal to this)
        state = self.state
        theta, theta_dot = state[2], state[3]
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = np.where(actions == 1, self.force_mag, -self.force_mag)
        temp += self.polemass_length * np.square(theta_dot) * sintheta
        temp /= self.total_mass
        thetaacc = self.gravity * sintheta
        thetaacc -= costheta * temp
        thetaacc /= self.length * (
            4.0 / 3.0 - self.masspole * np.square(costheta) / self.total_mass)
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        # Euler, in place, each row from the old values: x += tau * x_dot, x_dot += ...
        state[0] += self.tau * state[1]
        state[1] += self.tau * xacc
        state[2] += self.tau * theta_dot
        theta_dot += self.tau * thetaacc
        self.t += 1
        done = (np.abs(state[0]) > self.x_threshold) | (
            np.abs(state[2]) > self.theta_threshold_radians)
        if self.t >= self.max_episode_steps:  # every running episode started together
            done[:] = True
        return state.T.astype(np.float32), 1.0, done

    def keep(self, mask: np.ndarray) -> None:
        self.state = self.state[:, mask]

    def close(self) -> None:
        pass


class EnvListBatch:
    """Any gymnasium environment: a growing pool of instances, one per running episode."""

    def __init__(self, make: Callable[[], gym.Env]) -> None:
        self.make = make
        self.pool = [make()]
        self.encoder = ObservationEncoder(self.pool[0].observation_space)
        self.obs_size = self.encoder.size
        self.active: list[gym.Env] = []

    def reset(self, seeds: np.ndarray) -> np.ndarray:
        while len(self.pool) < len(seeds):
            self.pool.append(self.make())
        self.active = self.pool[: len(seeds)]
        return np.stack([self.encoder(env.reset(seed=int(seed))[0])
                         for env, seed in zip(self.active, seeds)])

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(self.active)
        obs = np.empty((n, self.obs_size), dtype=np.float32)
        rewards = np.empty(n)
        done = np.empty(n, dtype=bool)
        for i, env in enumerate(self.active):
            o, r, terminated, truncated, _ = env.step(actions[i])
            obs[i] = self.encoder(o)
            rewards[i] = r
            done[i] = terminated or truncated
        return obs, rewards, done

    def keep(self, mask: np.ndarray) -> None:
        self.active = [env for env, k in zip(self.active, mask) if k]

    def close(self) -> None:
        for env in self.pool:
            env.close()


def time_limit(env_id: str, env_kwargs: dict[str, Any]) -> int | None:
    """The episode step limit: env_kwargs' max_episode_steps, else the registered one."""
    limit = env_kwargs.get("max_episode_steps", gym.spec(registered_id(env_id)).max_episode_steps)
    return None if limit is None else int(limit)


def make_batched_env(env_id: str, env_kwargs: dict[str, Any]) -> BatchedEnv:
    """The fastest batched form of an environment id validated beforehand by make_env
    (registered_id registers gymlab's own ids and "module:Env-v0" ones in workers too)."""
    spec = gym.spec(registered_id(env_id))
    kwargs = {**spec.kwargs, **env_kwargs}
    limit = kwargs.pop("max_episode_steps", spec.max_episode_steps)
    if spec.entry_point == CARTPOLE_ENTRY_POINT and not any(kwargs.values()) and limit:
        return CartPoleBatch(int(limit))
    return EnvListBatch(lambda: make_env(env_id, kwargs=env_kwargs))
