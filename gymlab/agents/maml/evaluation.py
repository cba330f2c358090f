"""The adaptation curve of a meta-trained policy: returns after 0, 1, 2, ... inner steps,
and the choice of a policy's later test-time step on validation tasks."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from gymlab.agents.maml.config import MAMLConfig
from gymlab.agents.maml.episodes import TaskEpisodes
from gymlab.agents.maml.policy import Params
from gymlab.core.run import RunConfig
from gymlab.core.seeding import generator_state, set_generator_state

LATER_STEP_FRACTIONS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.7, 1.0)
"""The fractions of fast_lr that choose_later_step_fraction tries."""
LATER_STEP_EPISODES = 40
"""Episodes per validation task and step (the MAML paper's test batch)."""
TEST_SEED_OFFSET = 1_000_000
"""The adaptation curve's tasks are seeded with the run's seed plus this, apart from
training's."""
VALIDATION_SEED_OFFSET = 2_000_000
"""The validation tasks' seed is the run's seed plus this, apart from training's and the
test's."""


@dataclass
class AdaptationCurve:
    """Mean return over tasks after 0, 1, ... inner steps, with standard errors."""

    returns: np.ndarray
    """[steps + 1, tasks]: each task's mean episode return after i steps."""
    lengths: np.ndarray
    """[steps + 1, tasks]: each task's mean episode length after i steps."""

    @property
    def mean(self) -> np.ndarray:
        return self.returns.mean(1)

    @property
    def stderr(self) -> np.ndarray:
        n = self.returns.shape[1]
        return self.returns.std(1, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(len(self.mean))

    def table(self) -> list[str]:
        return [f"after {i} step(s): {m:9.2f} ± {se:.2f}"
                for i, (m, se) in enumerate(zip(self.mean, self.stderr))]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "stderr": self.stderr.tolist(),
                "tasks": int(self.returns.shape[1]), "returns": self.returns.tolist()}

    def plot(self, out: str | Path, title: str) -> Path:
        """Mean return against inner steps, with standard-error bars, as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        steps = np.arange(len(self.mean))
        ax.errorbar(steps, self.mean, yerr=self.stderr, marker="o", capsize=4)
        ax.set_xticks(steps)
        ax.set_xlabel("policy-gradient steps on the new task")
        ax.set_ylabel(f"mean return ({self.returns.shape[1]} tasks, ± s.e.)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        out = Path(out)
        fig.savefig(out)
        plt.close(fig)
        return out


class TaskLearner(Protocol):
    """What the test-time helpers need of a MAML agent (trainer.MAML)."""

    config: MAMLConfig
    run_config: RunConfig
    family: gym.Env
    task_rng: np.random.Generator
    generator: torch.Generator

    def sample(self, tasks: list[dict[str, Any]], episodes: int, params: Any) -> TaskEpisodes:
        ...

    def adapted(self, params: Params | None, episodes: TaskEpisodes,
                fast_lr: float | None = None) -> Params:
        ...


@contextmanager
def seeded(agent: TaskLearner, seed: int) -> Iterator[None]:
    """The agent's task and episode generators seeded with `seed` inside, restored after,
    so an evaluation neither depends on nor changes what training draws next."""
    saved = (generator_state(agent.task_rng), agent.generator.get_state())
    agent.task_rng = np.random.default_rng(seed)
    agent.generator.manual_seed(seed + 1)
    try:
        yield
    finally:
        set_generator_state(agent.task_rng, saved[0])
        agent.generator.set_state(saved[1])


def choose_later_step_fraction(agent: TaskLearner, tasks: int) -> tuple[float, dict[float, float]]:
    """The fraction of fast_lr for the first test step after the trained ones that gives the
    best mean return after it, on `tasks` new validation tasks (seeded apart from the test's
    tasks), and the mean return of every candidate. Every candidate steps from the same
    adapted policies and is sampled with the same random numbers, so the comparison is not
    swamped by sampling noise. Why a policy's own: the best size differs between training
    seeds (benchmarks/README.md, 2D navigation)."""
    cfg = agent.config
    means: dict[float, float] = {}
    with seeded(agent, agent.run_config.seed + VALIDATION_SEED_OFFSET):
        goals = agent.family.unwrapped.sample_tasks(tasks, agent.task_rng)
        adapted = None
        for _ in range(cfg.num_steps):
            adapted = agent.adapted(adapted, agent.sample(goals, LATER_STEP_EPISODES, adapted))
        episodes = agent.sample(goals, LATER_STEP_EPISODES, adapted)
        draws = (generator_state(agent.task_rng), agent.generator.get_state())
        for fraction in LATER_STEP_FRACTIONS:
            set_generator_state(agent.task_rng, draws[0])
            agent.generator.set_state(draws[1])
            stepped = agent.adapted(adapted, episodes, cfg.fast_lr * fraction)
            means[fraction] = agent.sample(goals, LATER_STEP_EPISODES, stepped).returns.mean(
                1).mean().item()
    return max(means, key=means.__getitem__), means
