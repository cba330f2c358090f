"""What the reinforcement-learning agents share on top of the run lifecycle: a policy that
acts in a gymnasium environment, evaluated on seeded episodes and recorded as video."""

from __future__ import annotations

import sys
from abc import abstractmethod
from pathlib import Path
from typing import Any

from gymlab.core.algorithm import Algorithm, PolicyEvaluator
from gymlab.core.evaluation import EvalResult, Evaluator
from gymlab.core.video import check_recordable


class Agent(Algorithm):
    """Base class of gymlab's RL agents (DQN, PPO, GA, ES). Subclasses set `algo` and
    `Config`, build their networks in `_build`, and implement `_learn`, `batch_policy`,
    `act` and the state hooks."""

    @abstractmethod
    def batch_policy(self) -> Any:
        """A deterministic policy mapping encoded observations [B, n] to actions [B, ...]."""

    @abstractmethod
    def act(self, obs: Any) -> Any:
        """The deterministic action for one raw observation of the environment."""

    def make_evaluator(self) -> PolicyEvaluator | None:
        run = self.run_config
        return Evaluator(run.env, run.eval_episodes, run.seed + 1_000_000, run.env_kwargs)

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> EvalResult:
        """Mean and std return of the deterministic policy over fresh seeded episodes."""
        seed = self.run_config.seed + 2_000_000 if seed is None else seed
        evaluator = Evaluator(self.run_config.env, episodes, seed, self.run_config.env_kwargs)
        try:
            return evaluator(self.batch_policy())
        finally:
            evaluator.close()

    # -- videos/before.mp4 (the untrained policy) and videos/after.mp4 (the best checkpoint)
    def _videos(self) -> bool:
        return self.run_config.video == "before-after" and self.run_config.logdir is not None

    def _before_learn(self) -> None:
        if self._videos():
            check_recordable(self.run_config.env, self.run_config.env_kwargs)

    def _on_start(self) -> None:
        if self._videos() and self.step == 0:
            self._record(self, "before")

    def _on_end(self) -> None:
        if self._videos() and self.outcome in ("completed", "solved", "stopped"):
            best = self.run.checkpoint("best")  # type: ignore[union-attr]
            self._record(type(self).load(best) if best.exists() else self, "after")

    def _record(self, agent: Agent, name: str) -> None:
        path = self.run.path / "videos" / f"{name}.mp4"  # type: ignore[union-attr]
        seed = self.run_config.seed + 3_000_000  # the same start state before and after
        frames = agent.record(path, episodes=1, seed=seed)
        print(f"wrote {path} ({frames} frames)", file=sys.stderr)

    def record(self, path: str | Path, episodes: int = 1, seed: int | None = None) -> int:
        """An MP4 of `episodes` episodes, the first seeded `seed` (default: the run's seed +
        2000000); UserError when the environment cannot render frames."""
        from gymlab.core.video import record_video

        run = self.run_config
        check_recordable(run.env, run.env_kwargs)
        seed = run.seed + 2_000_000 if seed is None else seed
        return record_video(self.act, run.env, path, episodes, seed, run.env_kwargs)
