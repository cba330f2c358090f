"""Collecting K tasks x B episodes at once.

`rollout` runs one policy forward for every episode of every task per time step (through
fast.sampling_policy); what it steps is a batch environment with `reset(tasks, episodes,
seeds)` and `step(actions)`:

- `NavigationBatch` (gymlab.envs.navigation_batch): 2D navigation as one tensor program;
- `VectorEnvBatch`: any task family through gymnasium's SyncVectorEnv, the K x B
  environments split into parts (`EnvChunk`s): this process steps the first part and
  `num_workers - 1` worker processes the others, or one Ray actor steps each part. The
  policy stays in this process; only actions go out and observations, rewards and done flags
  come back. Every environment is seeded per episode and steps on its own, so the episodes
  do not depend on how the environments are split (tested).
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from gymlab.agents.maml import fast
from gymlab.agents.maml.env_workers import EnvChunk, start_worker
from gymlab.agents.maml.episodes import TaskEpisodes
from gymlab.agents.maml.policy import Params, Policy


class BatchEnv(Protocol):
    max_episode_steps: int

    def reset(self, tasks: list[dict[str, Any]], episodes: int,
              seeds: np.ndarray | None = None) -> torch.Tensor:
        """Observations [K, B, obs_size] of B new episodes of each of the K tasks."""

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Observations [K, B, obs_size], rewards [K, B] and done [K, B] (bool)."""

    def close(self) -> None: ...


@torch.no_grad()
def rollout(env: BatchEnv, policy: Policy, params: Params | None, tasks: list[dict[str, Any]],
            episodes: int, generator: torch.Generator, seeds: np.ndarray | None = None,
            action_scale: float = 1.0) -> TaskEpisodes:
    """B episodes of each task with the shared policy (params None) or each task's own
    parameters (entries [K, ...]); every tensor padded to the longest episode. The env gets
    the actions divided by `action_scale`; the episodes keep the policy's."""
    obs = env.reset(tasks, episodes, seeds)
    alive = torch.ones(obs.shape[:2], dtype=torch.bool, device=obs.device)
    trace: dict[str, list[torch.Tensor]] = {"obs": [], "actions": [], "rewards": [], "mask": []}
    distribution = fast.sampling_policy(policy, params, obs.shape[0])
    for _ in range(env.max_episode_steps):
        dist = distribution(obs)
        actions = policy.sample(dist, generator)
        next_obs, rewards, done = env.step(actions if action_scale == 1 else
                                           actions / action_scale)
        mask = alive.float()
        trace["obs"].append(obs)
        trace["actions"].append(actions)
        trace["rewards"].append(rewards * mask)
        trace["mask"].append(mask)
        alive = alive & ~done
        obs = next_obs
        if not alive.any():
            break
    return TaskEpisodes(**{key: torch.stack(values, 2) for key, values in trace.items()})


# -- gymnasium environments in parts: here, in worker processes, or in Ray actors -------------
class VectorEnvBatch:
    """K tasks x B episodes of a gymnasium task family in `num_workers` parts: this process
    and worker processes, or, with `on_ray` (Ray initialised by the caller, who owns the
    session), one Ray actor per part."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], tasks: int, episodes: int,
                 num_workers: int = 1, device: str | torch.device = "cpu",
                 on_ray: bool = False) -> None:
        self.shape = (tasks, episodes)
        self.device = torch.device(device)
        probe = gym.make(env_id, disable_env_checker=True, **env_kwargs)
        self.max_episode_steps = int(probe.spec.max_episode_steps or 1000)  # type: ignore
        space = probe.action_space
        self.bounds = ((space.low, space.high) if isinstance(space, gym.spaces.Box) else None)
        probe.close()
        n = tasks * episodes
        parts = np.array_split(np.arange(n), min(num_workers, n))
        self.slices = [slice(int(p[0]), int(p[-1]) + 1) for p in parts]
        self.local: EnvChunk | None = None
        self.actors: list[Any] = []
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        if on_ray:
            import ray

            actor = ray.remote(num_cpus=1)(EnvChunk)
            self.actors = [actor.remote(env_id, env_kwargs, len(part)) for part in parts]
            return
        self.local = EnvChunk(env_id, env_kwargs, len(parts[0]))
        for part in parts[1:]:
            pipe, proc = start_worker(env_id, env_kwargs, len(part))
            self.pipes.append(pipe)
            self.procs.append(proc)

    def _call(self, command: str, args: list[tuple[Any, ...]]) -> list[Any]:
        if self.actors:
            import ray

            try:
                return ray.get([getattr(actor, command).remote(*arg)
                                for actor, arg in zip(self.actors, args)])
            except ray.exceptions.RayError as exc:
                message = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
                raise RuntimeError(f"a Ray sampler actor failed: {message}") from None
        assert self.local is not None
        for pipe, arg in zip(self.pipes, args[1:]):
            pipe.send((command, *arg))
        first = getattr(self.local, command)(*args[0])
        try:
            return [first, *(pipe.recv() for pipe in self.pipes)]
        except (EOFError, ConnectionError):
            raise RuntimeError("a sampler worker process died (see its error above); a "
                               "script that uses num_workers > 1 needs the "
                               "`if __name__ == \"__main__\":` guard") from None

    def reset(self, tasks: list[dict[str, Any]], episodes: int,
              seeds: np.ndarray | None = None) -> torch.Tensor:
        if (len(tasks), episodes) != self.shape:
            raise ValueError(f"this batch holds {self.shape} episodes, not "
                             f"{(len(tasks), episodes)}")
        per_env = [task for task in tasks for _ in range(episodes)]
        seeds = np.arange(len(per_env)) if seeds is None else seeds
        args = [(per_env[s], [int(x) for x in seeds[s]]) for s in self.slices]
        return self._tensor(np.concatenate(self._call("reset", args)))

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = actions.reshape(self.shape[0] * self.shape[1], *actions.shape[2:]).cpu().numpy()
        if self.bounds is not None:
            flat = np.clip(flat, *self.bounds)
        results = self._call("step", [(flat[s],) for s in self.slices])
        obs, rewards, done = (np.concatenate(parts) for parts in zip(*results))
        return self._tensor(obs), self._tensor(rewards), self._tensor(done)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).reshape(*self.shape, *array.shape[1:]).to(self.device)

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("close",))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        if self.actors:
            import ray

            for actor in self.actors:
                ray.kill(actor)
        self.pipes, self.procs, self.actors = [], [], []
        if self.local is not None:
            self.local.close()
            self.local = None
