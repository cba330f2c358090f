"""A part of a meta-batch's gymnasium environments (`EnvChunk`) and the worker process that
steps one (`serve`), for samplers.VectorEnvBatch. Nothing here imports torch, so a worker
process starts with gymnasium, numpy and the environments' own imports only."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np

from gymlab.core.processes import exit_with_parent


def make_vector_env(env_id: str, env_kwargs: dict[str, Any], n: int) -> gym.vector.SyncVectorEnv:
    import gymlab.envs  # noqa: F401  registers gymlab's ids (in worker processes too)

    return gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id, disable_env_checker=True, **env_kwargs)] * n)


class EnvChunk:
    """Part of the K x B environments, in one SyncVectorEnv (autoreset stepping past an
    episode's end is harmless: the sampler masks those steps out)."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], n: int) -> None:
        self.vec = make_vector_env(env_id, env_kwargs, n)

    def reset(self, tasks: list[dict[str, Any]], seeds: list[int]) -> np.ndarray:
        for env, task in zip(self.vec.envs, tasks):
            env.unwrapped.reset_task(task)  # type: ignore[attr-defined]
        obs, _ = self.vec.reset(seed=seeds)
        return np.asarray(obs, dtype=np.float32)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs, rewards, terminated, truncated, _ = self.vec.step(actions)
        return (np.asarray(obs, dtype=np.float32), np.asarray(rewards, dtype=np.float32),
                terminated | truncated)

    def close(self) -> None:
        self.vec.close()


def serve(conn: Connection, parent_pid: int, death_signal: bool, env_id: str,
          env_kwargs: dict[str, Any], n: int) -> None:
    """A worker process: step its EnvChunk as `conn` says, until "close" or the pipe's end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    # a killed parent's pipe stays open while a process it forked lives on: end with the
    # parent itself, not only at the pipe's end
    exit_with_parent(parent_pid, death_signal)
    chunk = EnvChunk(env_id, env_kwargs, n)
    try:
        while True:
            command, *args = conn.recv()
            if command == "reset":
                conn.send(chunk.reset(*args))
            elif command == "step":
                conn.send(chunk.step(*args))
            else:
                break
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        chunk.close()


def start_worker(env_id: str, env_kwargs: dict[str, Any], n: int
                 ) -> tuple[Connection, multiprocessing.process.BaseProcess]:
    """A spawned worker process stepping `n` environments, and the pipe to it. It ignores
    Ctrl-C (this process handles it) and ends with this process, however this one ends."""
    ctx = multiprocessing.get_context("spawn")  # fork would copy TensorBoard's thread
    # Linux's parent-death signal comes when the starting *thread* ends: ask for it only
    # from the main thread (the pid watcher covers the others)
    main = threading.current_thread() is threading.main_thread()
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(child, os.getpid(), main, env_id, env_kwargs, n),
                       daemon=True)
    proc.start()
    child.close()
    return parent, proc
