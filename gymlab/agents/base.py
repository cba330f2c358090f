"""What every agent shares: config resolution, the run around `learn`, save/load/resume."""

from __future__ import annotations

import dataclasses
import difflib
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from gymlab.core.config import build, to_dict
from gymlab.core.errors import CheckpointError, UserError
from gymlab.core.evaluation import EvalResult, Evaluator
from gymlab.core.run import (
    RunConfig,
    RunDir,
    load_checkpoint,
    rng_states,
    save_checkpoint,
    seed_everything,
    set_rng_states,
)
from gymlab.core.session import EvalCallback, TrainingSession
from gymlab.core.video import check_recordable
from gymlab.hyperparams import tuned


def resolve_configs(
    algo: str, config_cls: type, env_id: str, overrides: dict[str, Any]
) -> tuple[RunConfig, Any]:
    """Dataclass defaults < the tuned table for (algo, env) < `overrides`, split by field."""
    run_names = {f.name for f in dataclasses.fields(RunConfig)}
    algo_names = {f.name for f in dataclasses.fields(config_cls)}
    for key in overrides:
        if key not in run_names | algo_names:
            close = difflib.get_close_matches(key, sorted(run_names | algo_names), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"unknown option {key!r} for {algo}{hint}")
    layers = [{"env": env_id}, tuned(algo, env_id), overrides]
    run = build(RunConfig, *({k: v for k, v in d.items() if k in run_names} for d in layers))
    cfg = build(config_cls, *({k: v for k, v in d.items() if k in algo_names} for d in layers))
    return run, cfg


class Agent(ABC):
    """Base class of gymlab's agents. Subclasses set `algo` and `Config`, build their
    networks in `_build`, and implement `_learn`, `batch_policy`, `act` and the state hooks."""

    algo: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, env: str = "CartPole-v1", **overrides: Any) -> None:
        run_config, config = resolve_configs(self.algo, self.Config, env, overrides)
        self._setup(run_config, config)

    def _setup(self, run_config: RunConfig, config: Any) -> None:
        self.run_config, self.config = run_config, config
        seed_everything(run_config.seed, run_config.torch_threads)
        self.step = 0
        self.run: RunDir | None = None
        self.session: TrainingSession | None = None
        self.session_state: dict[str, Any] = {}
        self.outcome = "new"
        self.exit_code = 0
        self._resume_step: int | None = None
        self._build()

    # -- the algorithm ------------------------------------------------------------------------
    @abstractmethod
    def _build(self) -> None:
        """Create environments, networks and optimizers from the configs."""

    @abstractmethod
    def _learn(self, session: TrainingSession) -> None:
        """Train until `run_config.total_steps` or `session.stop`."""

    @abstractmethod
    def batch_policy(self) -> Any:
        """A deterministic policy mapping encoded observations [B, n] to actions [B, ...]."""

    @abstractmethod
    def act(self, obs: Any) -> Any:
        """The deterministic action for one raw observation of the environment."""

    @abstractmethod
    def _weights(self) -> dict[str, Any]:
        """What acting needs (network weights, normalisation statistics)."""

    @abstractmethod
    def _training_state(self) -> dict[str, Any]:
        """Everything else needed to continue training exactly."""

    @abstractmethod
    def _load(self, weights: dict[str, Any], state: dict[str, Any] | None) -> None:
        """Restore from `_weights()` and, when present, `_training_state()`."""

    # -- running ------------------------------------------------------------------------------
    def learn(self, total_steps: int | None = None, on_eval: EvalCallback | None = None) -> Agent:
        """Train until the run has taken `total_steps` environment steps in all (default: the
        config's), an evaluation reaches `stop_reward`, `on_eval` returns True, or Ctrl-C.
        Returns self; `outcome` says how it ended, `session_state` holds best_eval,
        last_eval and solved_step."""
        if total_steps is not None:
            self.run_config = dataclasses.replace(self.run_config, total_steps=total_steps)
        videos = self.run_config.video == "before-after" and self.run_config.logdir is not None
        if videos:
            check_recordable(self.run_config.env, self.run_config.env_kwargs)  # before any file
        if self.run is None and self.run_config.logdir is not None:
            self.run = RunDir.create(self.run_config.logdir, self.algo, self.run_config.env,
                                     self.config_dict())
        if videos and self.step == 0:
            self._record(self, "before")
        with TrainingSession(self, self.run, self._resume_step, on_eval) as session:
            self._learn(session)
        self.outcome, self._resume_step = session.outcome, None
        self.exit_code = {"completed": 0, "solved": 0, "stopped": 0, "diverged": 1}.get(
            session.outcome, session.interrupt.exit_code)
        if videos and self.outcome in ("completed", "solved", "stopped"):
            best = self.run.checkpoint("best")  # type: ignore[union-attr]
            self._record(type(self).load(best) if best.exists() else self, "after")
        return self

    def _record(self, agent: Agent, name: str) -> None:
        from gymlab.core.video import record_video

        path = self.run.path / "videos" / f"{name}.mp4"  # type: ignore[union-attr]
        seed = self.run_config.seed + 3_000_000  # the same start state before and after
        frames = record_video(agent.act, self.run_config.env, path, episodes=1, seed=seed,
                              env_kwargs=self.run_config.env_kwargs)
        print(f"wrote {path} ({frames} frames)", file=sys.stderr)

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> EvalResult:
        """Mean and std return of the deterministic policy over fresh seeded episodes."""
        seed = self.run_config.seed + 2_000_000 if seed is None else seed
        evaluator = Evaluator(self.run_config.env, episodes, seed, self.run_config.env_kwargs)
        try:
            return evaluator(self.batch_policy())
        finally:
            evaluator.close()

    # -- persistence --------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {"run": to_dict(self.run_config), self.algo: to_dict(self.config)}

    def checkpoint(self, full: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "config": self.config_dict(),
            "step": self.step,
            "weights": self._weights(),
        }
        if full:
            session = self.session.state() if self.session else self.session_state
            payload["state"] = {**self._training_state(), "session": session,
                                "global_rng": rng_states()}
        return payload

    def save(self, path: str | Path) -> None:
        """Write a full checkpoint (weights and training state) atomically."""
        save_checkpoint(path, self.algo, self.checkpoint(full=True))

    @classmethod
    def load(cls, path: str | Path, **run_overrides: Any) -> Agent:
        """An agent from a checkpoint file, or a run directory (its best.pt, else last.pt)."""
        data = load_checkpoint(path, cls.algo)
        try:
            run_cfg = build(RunConfig, data["config"]["run"], run_overrides)
            config = build(cls.Config, data["config"][cls.algo])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} has an unreadable config ({exc})") from None
        agent = cls.__new__(cls)
        agent._setup(run_cfg, config)
        agent.step = int(data["step"])
        state = data.get("state")
        agent._load(data["weights"], state)
        if state is not None:
            agent.session_state = state["session"]
            set_rng_states(state["global_rng"])
        return agent

    @classmethod
    def resume(cls, run_dir: str | Path, **run_overrides: Any) -> Agent:
        """The agent of a run directory at its last checkpoint, ready to `learn` on."""
        run = RunDir.open(run_dir)
        last = run.checkpoint("last")
        if not last.exists():
            raise CheckpointError(f"{run_dir} has no checkpoint to resume from ({last} is missing)")
        agent = cls.load(last, **run_overrides)
        agent.run = run
        agent._resume_step = agent.step
        return agent
