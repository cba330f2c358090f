"""Creating environments with clear errors, and the replayable pool agents train on."""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from gymlab.core.errors import EnvError, UserError
from gymlab.core.seeding import generator_state, set_generator_state
from gymlab.core.spaces import ObservationEncoder


def check_env_id(env_id: str) -> None:
    """Raise a UserError naming close registered ids when `env_id` is unknown. The
    "module:Env-v0" form (gymnasium's) imports the module first, which registers the id."""
    registered = registered_id(env_id)
    if registered not in gym.registry:
        _import_namespace(registered)
    if registered in gym.registry:
        return
    close = difflib.get_close_matches(registered, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserError(f"unknown environment id {registered!r}{hint}")


def registered_id(env_id: str) -> str:
    """The registry id of `env_id`: "module:Ns/Env-v0" imports `module` (whose import
    registers the environment, as gym.make does for this form) and gives "Ns/Env-v0"."""
    if ":" not in env_id:
        return env_id
    module, _, registered = env_id.partition(":")
    _import_registering(module, env_id)
    return registered


def _import_namespace(env_id: str) -> None:
    """Import the package named by the namespace of "pkg/Env-v0", which registers its
    environments on import: gym.make does not do it (only for "pkg:pkg/Env-v0"), and the
    packages `gymlab new-env` writes work this way. No such package: nothing to do."""
    namespace = env_id.split("/", 1)[0] if "/" in env_id else ""
    if namespace.isidentifier():
        _import_registering(namespace, env_id, missing_ok=True)


def _import_registering(module: str, env_id: str, missing_ok: bool = False) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise UserError(f"importing {module} to register {env_id} failed: {exc}") from None
        if not missing_ok:
            raise UserError(f"cannot import {module!r}, the module named in {env_id!r}") from None
    except Exception as exc:  # the package's own bug: name it on one line
        raise UserError(f"importing {module} to register {env_id} failed: "
                        f"{type(exc).__name__}: {exc}") from None


DEFAULT_TIME_LIMIT = 10_000
"""Steps after which an episode of an environment registered without a time limit is
truncated, so that an episode that never ends cannot hang an evaluation or grow a
training episode's replay log without bound. `env_kwargs` {"max_episode_steps": N} sets
another limit (null: none at all)."""

_noted_without_limit: set[str] = set()


def make_env(env_id: str, render_mode: str | None = None,
             kwargs: dict[str, Any] | None = None) -> gym.Env:
    """gym.make with one-line errors for unknown ids, bad keyword arguments and missing
    optional dependencies. `render_mode` is passed only when given: many environments'
    constructors take none. An environment registered without a time limit gets
    DEFAULT_TIME_LIMIT unless `kwargs` names max_episode_steps. An exception inside the
    environment's reset or step comes out as an EnvError naming the environment and the
    step."""
    check_env_id(env_id)
    options = dict(kwargs or {})
    limit = gym.spec(registered_id(env_id)).max_episode_steps
    cut_at = None
    if "max_episode_steps" not in options and limit is None:
        options["max_episode_steps"] = cut_at = DEFAULT_TIME_LIMIT
    if render_mode is not None:
        options["render_mode"] = render_mode
    try:
        # the passive checker re-validates every step's output, a large share of a small
        # environment's step (benchmarks/cartpole_ppo.py)
        env = gym.make(env_id, disable_env_checker=True, **options)
    except gym.error.DependencyNotInstalled as exc:
        raise UserError(f"{env_id} needs an optional dependency: {exc}") from None
    except TypeError as exc:
        if "argument" not in str(exc):
            raise
        raise UserError(f"{env_id}: {exc}") from None
    return NamedFailures(env, env_id, cut_at)


class NamedFailures(gym.Wrapper):
    """Re-raises an exception from the environment's reset or step as an EnvError whose
    message names the environment id and the episode's step (gymlab's own UserErrors pass
    through unchanged). Given `cut_at`, the time limit gymlab set, it notes once per process,
    when an episode is first cut there, that the limit is gymlab's: a note at construction
    would come before the one-line error of a run that never steps."""

    def __init__(self, env: gym.Env, env_id: str, cut_at: int | None = None) -> None:
        super().__init__(env)
        self.env_id, self.cut_at = env_id, cut_at
        self.episode_step = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.episode_step = 0
        try:
            return self.env.reset(**kwargs)
        except (UserError, EnvError):
            raise
        except Exception as exc:
            raise EnvError(f"environment {self.env_id} failed in reset: "
                           f"{_describe(exc)}", self.env_id, None) from exc

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        self.episode_step += 1
        try:
            result = self.env.step(action)
        except (UserError, EnvError):
            raise
        except Exception as exc:
            raise EnvError(f"environment {self.env_id} failed at step {self.episode_step} of "
                           f"an episode: {_describe(exc)}", self.env_id,
                           self.episode_step) from exc
        if self.episode_step == self.cut_at and result[3]:
            note_default_time_limit(self.env_id, self.cut_at)
        return result


def note_default_time_limit(env_id: str, limit: int) -> None:
    if env_id not in _noted_without_limit:
        _noted_without_limit.add(env_id)
        print(f"note: {env_id} has no time limit; gymlab ended an episode after {limit:,} "
              "steps (env_kwargs {\"max_episode_steps\": N} sets another limit)",
              file=sys.stderr)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class EnvPool:
    """`num_envs` copies of an environment stepped in lockstep, reset automatically.

    Every episode starts from `reset(seed=...)` with a seed drawn from the pool's own
    generator, and the actions taken since are logged. An environment's exact state can so be
    rebuilt after a restart by replaying the episode's actions, for any deterministic
    environment, without pickling it: this is what makes a resumed run continue exactly.
    """

    def __init__(self, env_id: str, num_envs: int, seed: int,
                 env_kwargs: dict[str, Any] | None = None) -> None:
        self.envs = [make_env(env_id, kwargs=env_kwargs) for _ in range(num_envs)]
        self.encoder = ObservationEncoder(self.envs[0].observation_space)
        self.rng = np.random.default_rng(seed)
        self.num_envs = num_envs
        self.obs = np.zeros((num_envs, self.encoder.size), dtype=np.float32)
        self.episode_seeds = np.zeros(num_envs, dtype=np.int64)
        self.episode_actions: list[list[Any]] = [[] for _ in range(num_envs)]
        self.episode_returns = np.zeros(num_envs, dtype=np.float64)
        self.episode_lengths = np.zeros(num_envs, dtype=np.int64)
        self.before_step: Callable[[np.ndarray], None] | None = None
        """Called with the actions before the envs step: where their work can start at
        once (the network search trains the candidates of all envs in parallel)."""

    @property
    def observation_space(self) -> gym.Space:
        return self.envs[0].observation_space

    @property
    def action_space(self) -> gym.Space:
        return self.envs[0].action_space

    def reset(self) -> np.ndarray:
        for i in range(self.num_envs):
            self._reset_one(i)
        return self.obs

    def _reset_one(self, i: int) -> None:
        seed = int(self.rng.integers(2**31 - 1))
        obs, _ = self.envs[i].reset(seed=seed)
        self.episode_seeds[i] = seed
        self.episode_actions[i] = []
        self.episode_returns[i] = 0.0
        self.episode_lengths[i] = 0
        self.obs[i] = self.encoder(obs)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[float, int]]]:
        """Step every environment; finished ones are reset.

        Returns the observations that followed the actions (the final ones where an episode
        ended, for bootstrapping), rewards, terminated, truncated, and (return, length) of
        each episode that ended. `self.obs` then holds the observations to act on next.
        """
        next_obs = np.empty_like(self.obs)
        rewards = np.empty(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        finished: list[tuple[float, int]] = []
        if self.before_step is not None:
            self.before_step(actions)
        for i, env in enumerate(self.envs):
            action = actions[i]
            obs, reward, term, trunc, _ = env.step(action)
            self.episode_actions[i].append(action)
            next_obs[i] = self.encoder(obs)
            rewards[i] = reward
            terminated[i], truncated[i] = term, trunc
            self.episode_returns[i] += float(reward)
            self.episode_lengths[i] += 1
            if term or trunc:
                finished.append((float(self.episode_returns[i]), int(self.episode_lengths[i])))
                self._reset_one(i)
            else:
                self.obs[i] = next_obs[i]
        return next_obs, rewards, terminated, truncated, finished

    def state_dict(self) -> dict[str, Any]:
        import torch

        return {
            "rng": generator_state(self.rng),
            "episode_seeds": torch.from_numpy(self.episode_seeds.copy()),
            "episode_actions": [torch.as_tensor(np.asarray(a)) for a in self.episode_actions],
            "obs": torch.from_numpy(self.obs.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rebuild every environment's state by replaying the current episode's actions."""
        for i, env in enumerate(self.envs):
            seed = int(state["episode_seeds"][i])
            obs, _ = env.reset(seed=seed)
            self.episode_seeds[i] = seed
            self.episode_returns[i] = 0.0
            actions = state["episode_actions"][i].numpy()
            self.episode_actions[i] = list(actions)
            for action in actions:
                obs, reward, *_ = env.step(action)
                self.episode_returns[i] += float(reward)
            self.episode_lengths[i] = len(actions)
            self.obs[i] = self.encoder(obs)
        if not np.array_equal(self.obs, state["obs"].numpy()):
            raise UserError(
                "resuming needs a deterministic environment: replaying the current episodes "
                "did not reproduce the saved observations"
            )
        set_generator_state(self.rng, state["rng"])

    def close(self) -> None:
        for env in self.envs:
            env.close()
