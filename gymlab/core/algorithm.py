"""The run lifecycle every gymlab algorithm plugs into.

An `Algorithm` is a config (`RunConfig` + the algorithm's own dataclass), state, and a few
hooks: `_learn` (its loop, top to bottom), its evaluator, its checkpointed state. Everything
else is shared and lives here or in `Session`: resolving defaults (dataclass < the
algorithm's run defaults < its tuned table for the environment < the user's values), the run
directory and config.json, best/last checkpoints, load and resume (with one declared list of
the settings a resumed run may change), Ctrl-C/SIGTERM and exit codes.
"""

from __future__ import annotations

import dataclasses
import difflib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from gymlab.core.checkpoints import load_checkpoint, save_checkpoint
from gymlab.core.config import build, to_dict
from gymlab.core.errors import CheckpointError, UserError
from gymlab.core.evaluation import EvalResult
from gymlab.core.run import RunConfig, RunDir
from gymlab.core.seeding import rng_states, seed_everything, set_rng_states
from gymlab.core.session import EvalCallback, Session

A = TypeVar("A", bound="Algorithm")

EXIT_CODES = {"completed": 0, "solved": 0, "stopped": 0, "diverged": 1, "failed": 1}
"""Exit code of each outcome; an interrupted run exits 128 + the signal (130, 143)."""


class PolicyEvaluator(Protocol):
    """Scores a policy on fresh seeded episodes (core.evaluation.Evaluator is one)."""

    def __call__(self, policy: Any) -> EvalResult: ...
    def close(self) -> None: ...


def tuned_defaults(cls: type[Algorithm], env_id: str) -> dict[str, Any]:
    """The algorithm's tuned values for `env_id` (with or without the gymlab/ prefix)."""
    table = cls.TUNED
    for key in (env_id, env_id.removeprefix("gymlab/"), f"gymlab/{env_id}"):
        if key in table:
            return dict(table[key])
    return {}


def resolve_configs(cls: type[Algorithm], env_id: str,
                    overrides: dict[str, Any]) -> tuple[RunConfig, Any]:
    """Dataclass defaults < the algorithm's RUN_DEFAULTS < its tuned values for `env_id` <
    `overrides`, split into the RunConfig and the algorithm's Config."""
    run_names = {f.name for f in dataclasses.fields(RunConfig)}
    algo_names = {f.name for f in dataclasses.fields(cls.Config)}
    for key in overrides:
        if key not in run_names | algo_names:
            close = difflib.get_close_matches(key, sorted(run_names | algo_names), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"unknown option {key!r} for {cls.algo}{hint}")
    layers = [{"env": env_id}, cls.RUN_DEFAULTS, tuned_defaults(cls, env_id), overrides]
    run = build(RunConfig, *({k: v for k, v in d.items() if k in run_names} for d in layers))
    cfg = build(cls.Config, *({k: v for k, v in d.items() if k in algo_names} for d in layers))
    return run, cfg


class Algorithm(ABC):
    """Base class of every gymlab algorithm. A subclass sets the class attributes below and
    implements `_build`, `_learn` and the three state hooks; the rest is shared."""

    algo: ClassVar[str]
    """Name in gymlab.registry, in config.json and in checkpoints."""
    Config: ClassVar[type]
    """Frozen dataclass of the algorithm's own settings, one docstring per field."""
    default_env: ClassVar[str] = "CartPole-v1"
    unit: ClassVar[str] = "step"
    """What the progress bar counts: step, generation, meta-batch, candidate."""
    score_name: ClassVar[str] = "eval_return"
    """What an evaluation measures, as `gymlab tune --metric` names it."""
    scores_itself: ClassVar[bool] = False
    """True when `_learn` reports each score (session.report) instead of a periodic
    evaluator, so eval_every does not apply."""
    TUNED: ClassVar[dict[str, dict[str, Any]]] = {}
    """Tuned values per environment id: fields of RunConfig or of Config."""
    RUN_DEFAULTS: ClassVar[dict[str, Any]] = {}
    """RunConfig values that differ for this algorithm (below the tuned table)."""
    uses_torch: ClassVar[bool] = True
    """False for an algorithm that never needs torch (GA, ES): its runs do not import it
    (a large part of a short run's start-up), seed python's and numpy's generators only and
    write numpy checkpoints (gymlab.core.checkpoints)."""
    RESUMABLE: ClassVar[frozenset[str]] = frozenset({"total_steps", "stop_reward", "progress"})
    """Settings a resumed or loaded run may change: how long it goes on, how it reports and
    where it computes, never how it learns."""

    def __init__(self, env: str | None = None, **overrides: Any) -> None:
        run_config, config = resolve_configs(type(self), env or self.default_env, overrides)
        self._setup(run_config, config)

    def _setup(self, run_config: RunConfig, config: Any) -> None:
        self.run_config, self.config = run_config, config
        seed_everything(run_config.seed, run_config.torch_threads, torch=self.uses_torch)
        self.step = 0
        self.run: RunDir | None = None
        self.session: Session | None = None
        self.session_state: dict[str, Any] = {}
        self.outcome = "new"
        self.exit_code = 0
        self._resuming = False
        self._build()

    # -- hooks --------------------------------------------------------------------------------
    @abstractmethod
    def _build(self) -> None:
        """Create environments, networks and optimizers from the configs."""

    @abstractmethod
    def _learn(self, session: Session) -> None:
        """The algorithm's loop: run until its budget or `session.stop`."""

    @abstractmethod
    def _weights(self) -> dict[str, Any]:
        """What acting or evaluating needs (network weights, normalisation statistics)."""

    @abstractmethod
    def _training_state(self) -> dict[str, Any]:
        """Everything else needed to continue training exactly."""

    @abstractmethod
    def _load(self, weights: dict[str, Any], state: dict[str, Any] | None) -> None:
        """Restore from `_weights()` and, when present, `_training_state()`."""

    def progress_total(self) -> int:
        """The budget the progress bar counts towards, in `unit`s."""
        return self.run_config.total_steps

    def progress_count(self) -> int:
        """How many `unit`s the run has done."""
        return self.step

    def make_evaluator(self) -> PolicyEvaluator | None:
        """The periodic evaluator (called with `batch_policy()` every eval_every steps), or
        None when the algorithm reports its scores itself."""
        return None

    def batch_policy(self) -> Any:
        raise NotImplementedError(f"{self.algo} has no batch policy")

    def run_name(self) -> str:
        """The run directory's name before its time stamp."""
        return f"{self.algo}-{self.run_config.env.replace('/', '_')}"

    def run_path(self) -> Path | None:
        """An exact run directory to use instead of a stamped one under logdir (None)."""
        return None

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> EvalResult:
        """The score of the trained algorithm on fresh seeded episodes (`gymlab eval`)."""
        raise UserError(f"{self.algo} runs cannot be evaluated on episodes")

    def eval_lines(self, source: str, episodes: int, seed: int | None) -> list[str]:
        """What `gymlab eval` prints for this run."""
        result = self.evaluate(episodes, seed)
        return [f"{self.run_config.env} {source}: {result.mean:.2f} ± {result.std:.2f} "
                f"over {len(result.returns)} episodes"]

    def act(self, obs: Any) -> Any:
        """The deterministic action for one raw observation."""
        raise UserError(f"{self.algo} runs have no policy to act with")

    def record(self, path: str | Path, episodes: int = 1, seed: int | None = None) -> int:
        """Write an MP4 of the policy acting (`gymlab record`); returns the frame count."""
        raise UserError(f"{self.algo} runs have no policy to record")

    def close(self) -> None:  # noqa: B027 (an optional hook)
        """Release environments and worker processes."""

    def __enter__(self: A) -> A:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the run ------------------------------------------------------------------------------
    def learn(self: A, total_steps: int | None = None, on_eval: EvalCallback | None = None) -> A:
        """Train until the run's budget, an evaluation reaching `stop_reward`, `on_eval`
        returning True, or Ctrl-C/SIGTERM. Returns self; `outcome` says how it ended
        (completed, solved, stopped, interrupted, diverged, failed) and `exit_code` what the
        CLI exits with."""
        if total_steps is not None:
            self.run_config = dataclasses.replace(self.run_config, total_steps=total_steps)
        self._before_learn()
        if self.run is None and self.run_config.logdir is not None:
            self.run = RunDir.create(self.run_config.logdir, self.algo, self.run_config.env,
                                     {**self.config_dict(), "unit": self.unit,
                                      "score": self.score_name},
                                     name=self.run_name(), path=self.run_path())
        self._on_start()
        with Session(self, self.run, self._resuming, on_eval) as session:
            self._learn(session)
        self._resuming = False
        self.outcome = session.outcome
        self.exit_code = EXIT_CODES.get(session.outcome, session.interrupt.exit_code)
        self._on_end()
        return self

    def _before_learn(self) -> None:  # noqa: B027 (an optional hook)
        """Checks that must pass before anything is written (a subclass's)."""

    def _on_start(self) -> None:  # noqa: B027 (an optional hook)
        """After the run directory exists, before the first step (a subclass's)."""

    def _on_end(self) -> None:  # noqa: B027 (an optional hook)
        """After the session closed; `outcome` is set (a subclass's)."""

    # -- persistence --------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {"run": to_dict(self.run_config), self.algo: to_dict(self.config)}

    def checkpoint(self, full: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"config": self.config_dict(), "step": self.step,
                                   "weights": self._weights()}
        if full:
            session = self.session.state() if self.session else self.session_state
            payload["state"] = {**self._training_state(), "session": session,
                                "global_rng": rng_states(torch=self.uses_torch)}
        return payload

    def save(self, path: str | Path) -> None:
        """Write a full checkpoint (weights and training state) atomically."""
        save_checkpoint(path, self.algo, self.checkpoint(full=True),
                        numpy_only=not self.uses_torch)

    @classmethod
    def check_resumable(cls, overrides: dict[str, Any]) -> None:
        """UserError unless every key of `overrides` is in RESUMABLE."""
        fixed = sorted(set(overrides) - cls.RESUMABLE)
        if fixed:
            allowed = ", ".join(sorted(cls.RESUMABLE))
            raise UserError(f"a resumed {cls.algo} run keeps its config; cannot change "
                            f"{', '.join(fixed)} (may change: {allowed})")

    @classmethod
    def config_sections(cls, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run and algorithm sections of a saved config (a subclass may read older
        layouts here)."""
        return config["run"], config[cls.algo]

    @classmethod
    def load(cls: type[A], path: str | Path, **overrides: Any) -> A:
        """The algorithm from a checkpoint file, or a run directory (best.pt, else last.pt);
        `overrides` may change only RESUMABLE settings."""
        cls.check_resumable(overrides)
        data = load_checkpoint(path, cls.algo)
        run_names = {f.name for f in dataclasses.fields(RunConfig)}
        try:
            run_section, algo_section = cls.config_sections(data["config"])
            run_cfg = build(RunConfig, run_section,
                            {k: v for k, v in overrides.items() if k in run_names})
            config = build(cls.Config, algo_section,
                           {k: v for k, v in overrides.items() if k not in run_names})
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
    def resume(cls: type[A], run_dir: str | Path, **overrides: Any) -> A:
        """The run in `run_dir` at its last checkpoint, ready to `learn` on."""
        run = RunDir.open(run_dir)
        algo = run.config().get("algo")
        if algo != cls.algo:
            raise UserError(f"{run_dir} is a {algo} run, not a {cls.algo} run")
        last = run.checkpoint("last")
        if not last.exists():
            raise CheckpointError(f"{run_dir} has no checkpoint to resume from ({last} is missing)")
        agent = cls.load(last, **overrides)
        agent.run = run
        agent._resuming = True
        return agent
