"""The search: `run` validates it, starts Ray, runs the trials through a Ray Tune Tuner and
keeps every trial's row (the csv is rewritten whenever a trial ends); SIGINT/SIGTERM stop it
keeping the finished trials."""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gymlab.core.errors import UserError
from gymlab.core.ray import RaySession, check_reachable, require_ray_tune
from gymlab.tune.display import Display
from gymlab.tune.plan import Plan
from gymlab.tune.results import METRIC_COLUMNS, TuneResults, rank_key, write_csv
from gymlab.tune.space import Choice, Grid, LogUniform, Uniform
from gymlab.tune.trial import TrialSetup, run_trial, trial_dir_name
from gymlab.tune.validate import check_space
from gymlab.tune.values import decode, encode


def run(algo: str, env: str | None = None, space: Mapping[str, Any] | None = None, *,
        metric: str | None = None, mode: str | None = None, samples: int = 1,
        scheduler: str | None = None, search: str = "random", max_steps: int | None = None,
        stop_reward: float | None = None, seed: int = 0, cpus_per_trial: int = 1,
        logdir: str = "runs", ray_address: str | None = None, progress: bool = True,
        **overrides: Any) -> TuneResults:
    """Run the trials of `space` (grid size x `samples`) in parallel and return every trial's
    results, best first. `overrides` are config values every trial gets (eval_every=500, ...).
    The results are also in `<logdir>/tune-<algo>-<env>-<stamp>/tune_results.csv`."""
    if max_steps is not None:
        overrides["total_steps"] = max_steps
    if stop_reward is not None:
        overrides["stop_reward"] = stop_reward
    if not isinstance(cpus_per_trial, int) or cpus_per_trial < 1:
        raise UserError(f"cpus_per_trial must be a positive integer, got {cpus_per_trial!r}")
    plan = check_space(algo, env, space or {}, overrides, metric=metric, mode=mode,
                       samples=samples, seed=seed, search=search, scheduler=scheduler)
    if ray_address is not None:
        check_reachable(ray_address)
    require_ray_tune(optuna=plan.search == "optuna")
    with RaySession(ray_address, cpus_per_trial) as ray_cpus:
        from gymlab.core.run import new_dir

        path = new_dir(Path(logdir), f"tune-{algo}-{plan.env.replace('/', '_')}").resolve()
        return Search(plan, path, cpus_per_trial, ray_cpus, progress).run()


class Search:
    def _on_signal(self, signum: int) -> None:
        """The first SIGINT/SIGTERM stops the search after its running trials are stopped
        (their run directories keep the last checkpoint); a second one aborts at once."""
        self.interrupted = signum
        self.stop_event.set()
        if self.display:
            self.display.say("stopping the search: running trials are stopped, "
                             "finished ones kept (press Ctrl-C again to abort)")

    def __init__(self, plan: Plan, path: Path, cpus_per_trial: int, cpus: int,
                 progress: bool) -> None:
        self.plan, self.path = plan, path
        self.cpus_per_trial, self.cpus = cpus_per_trial, cpus
        self.progress = progress
        self.searched = [*plan.space, *(["seed"] if plan.seeds_vary else [])]
        self.interrupted: int | None = None
        self.stop_event = threading.Event()
        self.names: dict[str, str] = {}
        self.trials: dict[str, Any] = {}  # trial_id -> ray Trial
        self.started = time.perf_counter()

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the tuner (callbacks, stopper, name creator: all refer to this object)
        # into its experiment state; a restore is not offered, so the live parts stay here.
        return {"plan": self.plan, "path": self.path}

    # -- Ray's side ----------------------------------------------------------------------------
    def param_space(self) -> dict[str, Any]:
        from ray import tune

        space: dict[str, Any] = {}
        for key, spec in self.plan.space.items():
            if isinstance(spec, Grid) and self.plan.search == "random":
                space[key] = tune.grid_search([encode(v) for v in spec.values])
            elif isinstance(spec, (Grid, Choice)):
                space[key] = tune.choice([encode(v) for v in spec.values])
            elif isinstance(spec, LogUniform):
                space[key] = tune.loguniform(spec.low, spec.high)
            elif isinstance(spec, Uniform):
                space[key] = tune.uniform(spec.low, spec.high)
            else:
                space[key] = tune.randint(spec.low, spec.high + 1)  # Ray's is exclusive
        if self.plan.seeds_vary:
            space["seed"] = tune.grid_search(
                [self.plan.seed + k for k in range(self.plan.samples)])
        return space

    def tuner(self, storage: str) -> Any:
        from ray import tune
        from ray.tune.stopper import Stopper

        plan = self.plan
        search_alg: Any
        if plan.search == "optuna":
            import optuna
            from ray.tune.search.optuna import OptunaSearch

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            search_alg = OptunaSearch(metric=plan.metric, mode=plan.mode, seed=plan.seed)
            num_samples = plan.trials
        else:
            from ray.tune.search.basic_variant import BasicVariantGenerator

            search_alg = BasicVariantGenerator(random_state=plan.seed)
            num_samples = 1 if plan.seeds_vary else plan.samples
        scheduler = None
        if plan.scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            by = plan.metric if plan.metric == "last_eval_return" else "eval_return"
            grace = min(max(plan.eval_every, plan.max_steps // 10), plan.max_steps)
            scheduler = ASHAScheduler(time_attr="step", metric=by, mode="max",
                                      max_t=plan.max_steps, grace_period=grace,
                                      reduction_factor=3, stop_last_trials=False)
        search = self

        class Interrupt(Stopper):
            def __call__(self, trial_id: str, result: dict) -> bool:
                return False

            def stop_all(self) -> bool:
                return search.stop_event.is_set()

        def name(trial: Any) -> str:
            if trial.trial_id not in self.names:
                self.names[trial.trial_id] = trial_dir_name(len(self.names), plan.trials)
            return self.names[trial.trial_id]

        setup = TrialSetup(plan.algo, plan.env, {k: encode(v) for k, v in plan.fixed.items()},
                       str(self.path), self.cpus_per_trial)
        trainable = tune.with_resources(tune.with_parameters(run_trial, setup=setup),
                                        {"cpu": self.cpus_per_trial})
        return tune.Tuner(
            trainable,
            param_space=self.param_space(),
            tune_config=tune.TuneConfig(num_samples=num_samples, search_alg=search_alg,
                                        scheduler=scheduler, trial_name_creator=name,
                                        trial_dirname_creator=name, reuse_actors=True),
            run_config=tune.RunConfig(
                name="ray", storage_path=storage, verbose=0, stop=Interrupt(),
                callbacks=[_callback(self)], failure_config=tune.FailureConfig(max_failures=0),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))

    def run(self) -> TuneResults:
        import shutil
        import tempfile

        plan = self.plan
        storage = tempfile.mkdtemp(prefix="gymlab-tune-", dir="/tmp")
        self.display = Display(self, sys.stderr) if self.progress else None
        if self.display:
            concurrent = min(self.cpus // self.cpus_per_trial, plan.trials)
            self.display.say(
                f"tune {plan.algo} on {plan.env}: {plan.trials} trials, {concurrent} at a time "
                f"({self.cpus} CPUs, {self.cpus_per_trial} per trial), {plan.metric} "
                f"({plan.mode}), max {plan.max_steps} steps each; in {self.path}")
        try:
            from gymlab.core.interrupt import GracefulInterrupt

            with GracefulInterrupt(self._on_signal):
                self.tuner(storage).fit()
        except KeyboardInterrupt:
            self.interrupted = self.interrupted or signal.SIGINT
        finally:
            results = self.results()
            write_csv(results.csv, results.rows, results.searched)
            if self.display:
                self.display.close()
            shutil.rmtree(storage, ignore_errors=True)
        return results

    # -- our side ------------------------------------------------------------------------------
    def row(self, trial: Any, ended: str = "") -> dict[str, Any]:
        """A trial's results; `ended` ("complete", "error") when Ray's callback tells, as the
        trial's status may not say so yet."""
        from ray.tune.experiment import Trial

        result = trial.last_result or {}
        name = self.names.get(trial.trial_id, trial.trial_id)
        error_file = self.path / name / "error.txt"
        outcome = result.get("outcome", "")
        error = ""
        errored = ended == "error" or (trial.status == Trial.ERROR and not ended)
        if not ended and trial.status in (Trial.RUNNING, Trial.PENDING, Trial.PAUSED):
            status = "running"
        elif errored and not (self.interrupted and not error_file.exists()):
            status = "failed"
            error = _error_line(error_file, trial)
        elif outcome in ("", "running"):  # ended by the scheduler, or by Ctrl-C
            status = "interrupted" if self.interrupted else "stopped"
        else:
            status = "completed"
        row: dict[str, Any] = {"trial": name, "status": status, "outcome": outcome}
        for key in self.searched:
            row[key] = decode(self.plan, key, trial.config.get(key))
        for key in dict.fromkeys((*METRIC_COLUMNS, self.plan.metric)):
            row[key] = result.get(key, math.nan)
        if not row["run_dir"]:
            runs = sorted((self.path / name).glob("*/config.json"))
            row["run_dir"] = str(runs[0].parent) if runs else ""
        row["error"] = error
        row["solved"] = bool(result.get("solved"))
        return row

    def results(self, ended: Any = None, how: str = "") -> TuneResults:
        rows = [self.row(t, how if t is ended else "")  # the trials that started
                for t in self.trials.values()]
        rows.sort(key=lambda r: r["trial"])
        rows.sort(key=rank_key(self.plan.metric, self.plan.mode))
        return TuneResults(rows, self.path, self.plan, self.searched, self.interrupted)


def _error_line(error_file: Path, trial: Any) -> str:
    text = ""
    if error_file.is_file():
        text = error_file.read_text()
    else:
        try:
            text = str(trial.get_error() or "")
        except Exception:  # an error that cannot be unpickled here
            text = ""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "the trial's process died")[:300]


def _callback(search: Search) -> Any:
    from ray.tune import Callback

    class Events(Callback):
        """Keeps every trial, rewrites the csv when one ends, drives the display."""

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            search.trials[trial.trial_id] = trial
            if search.display:
                search.display.started(trial)

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                            **info: Any) -> None:
            search.trials[trial.trial_id] = trial

        def on_trial_complete(self, iteration: int, trials: list, trial: Any,
                              **info: Any) -> None:
            self.ended(trial, "complete")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.ended(trial, "error")

        def ended(self, trial: Any, how: str) -> None:
            search.trials[trial.trial_id] = trial
            results = search.results(trial, how)
            write_csv(results.csv, results.rows, results.searched)
            if search.display:
                search.display.ended(search.row(trial, how))

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            if search.display:
                search.display.tick(trials)

    return Events()
