"""The part of a run that does not depend on the algorithm.

An algorithm's `_learn` loop reads top to bottom like the paper and calls into a `Session`
for everything else: episode and scalar logging, the evaluation schedule (or the scores the
algorithm reports itself), best/last checkpoints, the stop-reward rule, the progress bar,
Ctrl-C/SIGTERM, non-finite losses and failing environments.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from gymlab.core.checkpoints import save_checkpoint
from gymlab.core.errors import EnvError
from gymlab.core.evaluation import EvalResult
from gymlab.core.interrupt import GracefulInterrupt
from gymlab.core.logger import Logger, Progress, plural
from gymlab.core.run import RunConfig, RunDir

Outcome = Literal["running", "completed", "solved", "stopped", "interrupted", "diverged",
                  "failed"]

EvalCallback = Callable[[int, EvalResult], "bool | None"]
"""Called after each evaluation with (step, result); returning True stops the run
("stopped"), as a hyperparameter search's early-stopping scheduler needs."""


class LoopHooks(Protocol):
    """What an algorithm's loop calls: a Session, or another trainer's adapter (the
    Lightning integration's)."""

    @property
    def stop(self) -> bool: ...
    def episode(self, step: int, episode_return: float, length: int) -> None: ...
    def log_due(self, step: int) -> bool: ...
    def log(self, step: int, scalars: dict[str, float]) -> None: ...
    def on_step(self, step: int) -> None: ...


class Trainee(Protocol):
    """What a Session needs of the algorithm it runs (gymlab.core.algorithm.Algorithm)."""

    algo: str
    unit: str
    uses_torch: bool
    step: int
    run_config: RunConfig
    session: Session | None
    session_state: dict[str, Any]

    def progress_total(self) -> int: ...
    def progress_count(self) -> int: ...
    def make_evaluator(self) -> Any: ...
    def batch_policy(self) -> Any: ...
    def checkpoint(self, full: bool) -> dict[str, Any]: ...


class NonFiniteLoss(ArithmeticError):
    """Raised by an update whose loss is NaN or infinite; the run stops, last.pt is kept."""


class Session:
    """One `learn` call of an algorithm: opened and closed by `Algorithm.learn`."""

    def __init__(self, algorithm: Trainee, run: RunDir | None, resuming: bool = False,
                 on_eval: EvalCallback | None = None) -> None:
        self.algorithm = algorithm
        self.on_eval = on_eval
        self.cfg = algorithm.run_config
        self.run = run
        self.logger = Logger(run, algorithm.step if resuming else None)
        self.evaluator = algorithm.make_evaluator() if self.cfg.eval_every > 0 else None
        self.interrupt = GracefulInterrupt()
        self.outcome: Outcome = "running"
        self.message = ""
        state = algorithm.session_state
        self.next_eval: int = state.get("next_eval", self.cfg.eval_every)
        self.next_log: int = state.get("next_log", self.cfg.log_every)
        self.best_eval: float = state.get("best_eval", float("-inf"))
        self.last_eval: EvalResult | None = None
        self.solved_step: int | None = state.get("solved_step")
        self._clock = (time.perf_counter(), algorithm.step)

    # -- used by the algorithms -------------------------------------------------------------
    @property
    def stop(self) -> bool:
        return self.outcome != "running" or self.interrupt.requested

    def episode(self, step: int, episode_return: float, length: int) -> None:
        self.logger.log(step, {"episode/return": episode_return, "episode/length": length})
        self.progress.set(ret=round(episode_return, 2))

    def log_due(self, step: int) -> bool:
        return step >= self.next_log

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Training scalars, with steps/s added; call when `log_due(step)`."""
        now = time.perf_counter()
        t0, s0 = self._clock
        self._clock = (now, step)
        rate = (step - s0) / (now - t0) if now > t0 else 0.0
        self.logger.log(step, {**scalars, "time/steps_per_second": rate})
        self.next_log = _next_multiple(self.next_log, self.cfg.log_every, step)

    def on_step(self, step: int) -> None:
        """Evaluate, checkpoint and check the stop rule when due; refresh the progress bar."""
        if self.evaluator is not None and step >= self.next_eval:
            self.next_eval = _next_multiple(self.next_eval, self.cfg.eval_every, step)
            self.report(step, self.evaluator(self.algorithm.batch_policy()))
        self.progress.update(self.algorithm.progress_count())

    def report(self, step: int, result: EvalResult) -> None:
        """A score of the run at `step`: logged, best.pt when it is the best so far, the
        stop rule and the evaluation callback applied, last.pt written."""
        self.last_eval = result
        self.logger.log(step, {"eval/return_mean": result.mean, "eval/return_std": result.std})
        self.progress.set(eval=round(result.mean, 2))
        if result.mean > self.best_eval:
            self.best_eval = result.mean
            if self.run is not None:
                save_checkpoint(self.run.checkpoint("best"), self.algorithm.algo,
                                self.algorithm.checkpoint(full=False),
                                numpy_only=not self.algorithm.uses_torch)
        stop_reward = self.cfg.stop_reward
        if stop_reward is not None and result.mean >= stop_reward and self.outcome == "running":
            self.outcome = "solved"
            self.message = f"solved at step {step}: evaluation {result} >= {stop_reward:g}"
            self.solved_step = step
        if self.on_eval is not None and self.on_eval(step, result) and self.outcome == "running":
            self.outcome = "stopped"
            self.message = f"stopped at step {step} by the evaluation callback"
        self.save_last()

    def state(self) -> dict[str, Any]:
        return {"next_eval": self.next_eval, "next_log": self.next_log,
                "best_eval": self.best_eval, "solved_step": self.solved_step,
                "last_eval": self.last_eval.mean if self.last_eval else None}

    def save_last(self) -> None:
        if self.run is not None:
            self.logger.flush()
            save_checkpoint(self.run.checkpoint("last"), self.algorithm.algo,
                            self.algorithm.checkpoint(full=True),
                            numpy_only=not self.algorithm.uses_torch)

    # -- start and end ----------------------------------------------------------------------
    def __enter__(self) -> Session:
        algorithm = self.algorithm
        algorithm.session = self
        self.interrupt.__enter__()
        if self.run is not None:
            print(f"run directory: {self.run.path}", file=sys.stderr)
        self.progress = Progress(algorithm.progress_total(), algorithm.progress_count(),
                                 f"{algorithm.algo} {self.cfg.env}", self.cfg.progress,
                                 sys.stderr, unit=algorithm.unit)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.interrupt.__exit__()
        algorithm = self.algorithm
        algorithm.session = None
        count = algorithm.progress_count()
        done = f"{count} {algorithm.unit if count == 1 else plural(algorithm.unit)}"
        suppress = False
        if exc_type is NonFiniteLoss:
            self.outcome, suppress = "diverged", True
            self.message = f"stopped after {done}: {exc}; kept the last good checkpoint"
        elif exc_type is not None and issubclass(exc_type, EnvError):
            self.outcome, suppress = "failed", True
            self.message = f"stopped after {done}: {exc}; kept the last good checkpoint"
        elif exc_type is None:
            if self.interrupt.requested:
                self.outcome = "interrupted"
                self.message = f"interrupted after {done}"
            elif self.outcome == "running":
                self.outcome = "completed"
                self.message = f"finished {done}"
            algorithm.session_state = self.state()
            if self.outcome != "solved":  # a solved run saved last.pt at its evaluation
                self.save_last()
        self.progress.close()
        self.logger.close()
        if self.evaluator is not None:
            self.evaluator.close()
        if exc_type is None or suppress:
            print(self.message, file=sys.stderr)
            resumable = self.outcome in ("interrupted", "failed") or (
                self.outcome == "diverged")
            if resumable and self.run is not None and self.run.checkpoint("last").exists():
                print(f"resume with: gymlab train --resume {shlex.quote(str(self.run.path))}",
                      file=sys.stderr)
        return suppress


def _next_multiple(due: int, every: int, step: int) -> int:
    """`due` advanced by whole `every`s until it is past `step` (in O(1): ga/es runs log every
    generation with `every` = 1 environment step, and a generation can be millions of steps)."""
    if due <= step:
        due += ((step - due) // every + 1) * every
    return due
