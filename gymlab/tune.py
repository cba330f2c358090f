"""Hyperparameter search over ordinary gymlab runs, in parallel with Ray Tune.

A search space maps config field names (of RunConfig or of the algorithm's Config) to a
*spec*: `grid` values (every one is tried), a `choice` among values, or a `uniform`,
`loguniform` or `randint` range. Everything is validated, and every value type-checked by
building the configs (and one agent), before Ray is even imported. Each trial is a normal
gymlab run with its own run directory, in a Ray worker process (reused by the next trial, which
saves a torch import per trial; every run seeds all generators itself, so a trial's numbers do
not depend on what ran before it) with `torch_threads` = CPUs per trial:

    <logdir>/tune-<algo>-<env>-<stamp>/
        tune_results.csv                 every trial: status, searched values, seed, metrics
        trial-000/<algo>-<env>-<stamp>/  the trial's run directory (config.json, checkpoints)
        trial-000/error.txt              the traceback, for a trial that crashed

Metrics (every trial reports all of them, after each evaluation and at its end):

- `steps_to_solve`: the step of the first evaluation whose mean return reached the stop
  reward; a trial that never solves counts as its max steps (`total_steps`).
- `wall_to_solve`: seconds from the start of training to that evaluation; a trial that never
  solves counts as the wall time of all its max steps (projected from its speed when it ended
  early: stopped by the scheduler, or diverged).
- `eval_return`: the best evaluation mean return; `last_eval_return`: the last one.

Ranking: for the *_to_solve metrics in min mode, solved trials come first, ties go to the
higher `eval_return`; failed trials come last. With `scheduler="asha"` trials are compared at
equal step counts (first rung at a tenth of the max steps, then every 3x) by their best
evaluation return so far, since the *_to_solve metrics say nothing until a trial solves.

Ray: started locally with every CPU (sessions under /tmp/ray, shut down at the end), or an
existing cluster (`ray_address`; a cluster with token authentication needs
RAY_AUTH_MODE=token). On a cluster each trial writes its run directory on the node it runs on,
at the same path: use a shared filesystem to find them all where the csv is.

Seeds: every trial of sample k (k = 0 .. samples-1) uses seed `seed + k`, so configs are
compared on the same seeds and repeats of one config differ. With `search="optuna"` grid values
become a categorical choice, the search runs grid size x samples trials, and every trial uses
`seed` (unless `seed` is itself searched).

    from gymlab import tune
    table = tune.run("dqn", "CartPole-v1",
                     {"learning_rate": tune.loguniform(1e-4, 1e-2),
                      "hidden_sizes": tune.grid((64,), (128, 128))},
                     samples=4, max_steps=50_000, eval_every=1_000)
    print(table.best, table.csv)
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gymlab.agents import ALGORITHMS
from gymlab.core.errors import UserError

METRICS = ("steps_to_solve", "eval_return", "last_eval_return", "wall_to_solve")
"""What a search can optimise; see the module docstring."""
DEFAULT_MODE = {"steps_to_solve": "min", "wall_to_solve": "min",
                "eval_return": "max", "last_eval_return": "max"}
SCHEDULERS = ("fifo", "asha")
SEARCHERS = ("random", "optuna")

NOT_SEARCHABLE = {
    "env": "the environment is fixed per search (env=...)",
    "logdir": "every trial's run directory goes under the search's folder",
    "progress": "trials never draw progress bars",
    "total_steps": "set the budget of every trial with max_steps (--max-steps)",
    "torch_threads": "trials use as many torch threads as CPUs per trial (--cpus-per-trial)",
}
RAY_TEMP_DIR = "/tmp/ray"
"""Ray's session folder for a local instance (its sockets need a short path), unless
RAY_TMPDIR is set."""
INSTALL_HINT = "pip install -c constraints.txt -e '.[tune]' (Ray Tune >= 2.41, optuna)"


# -- search-space specs --------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """Every value is tried (trials = product of the grids x samples)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Choice:
    """One value drawn uniformly per trial."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from [low, high]."""

    low: float
    high: float


@dataclass(frozen=True)
class LogUniform(Uniform):
    """A float whose logarithm is drawn uniformly from [log low, log high]; low > 0."""


@dataclass(frozen=True)
class RandInt:
    """An integer drawn uniformly from low to high, both included."""

    low: int
    high: int


Spec = Grid | Choice | Uniform | RandInt
KINDS: dict[str, type] = {"grid": Grid, "choice": Choice, "uniform": Uniform,
                          "loguniform": LogUniform, "randint": RandInt}


def grid(*values: Any) -> Grid:
    return Grid(tuple(values))


def choice(*values: Any) -> Choice:
    return Choice(tuple(values))


def uniform(low: float, high: float) -> Uniform:
    return Uniform(low, high)


def loguniform(low: float, high: float) -> LogUniform:
    return LogUniform(low, high)


def randint(low: int, high: int) -> RandInt:
    return RandInt(low, high)


def _kind(spec: Spec) -> str:
    return next(name for name, cls in KINDS.items() if type(spec) is cls)


# -- parsing the command line's KEY=VALUES strings -------------------------------------------
def parse_spec(kind: str, text: str) -> tuple[str, Spec]:
    """`key=[a,b]` (grid, choice; brackets optional, a value may itself be bracketed) or
    `key=low:high` (uniform, loguniform, randint) -> (key, spec). Values of a list stay
    strings until `check_space` converts them to the field's type."""
    key, sep, rest = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key.isidentifier():
        example = "KEY=a,b,c" if kind in ("grid", "choice") else "KEY=LOW:HIGH"
        raise UserError(f"--{kind}: expected {example}, got {text!r}")
    if kind in ("grid", "choice"):
        return key, KINDS[kind](tuple(_split_list(kind, key, rest)))
    parts = rest.split(":")
    if len(parts) != 2:
        raise UserError(f"--{kind} {key}: expected LOW:HIGH, got {rest!r}")
    number = _int if kind == "randint" else _float
    low, high = (number(kind, key, p) for p in parts)
    spec = KINDS[kind](low, high)
    _check_bounds(kind, key, spec)
    return key, spec


def _float(kind: str, key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--{kind} {key}: expected a number, got {text.strip()!r}") from None
    if not math.isfinite(value):
        raise UserError(f"--{kind} {key}: expected a finite number, got {text.strip()!r}")
    return value


def _int(kind: str, key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--{kind} {key}: expected an integer, got {text.strip()!r}") from None


def _split_list(kind: str, key: str, text: str) -> list[str]:
    """Split `[a,[1,2],b]` or `a,b` on its top-level commas."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]") and _balanced(text[1:-1]):
        text = text[1:-1]
    items, depth, current = [], 0, ""
    for ch in text:
        if ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
            if depth < 0:
                break
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    if depth != 0:
        raise UserError(f"--{kind} {key}: unbalanced brackets in {text!r}")
    items = [item.strip() for item in items]
    items = [item[1:-1] if len(item) > 1 and item[0] == item[-1] and item[0] in "'\"" else item
             for item in items]
    if not any(items):
        raise UserError(f"--{kind} {key}: needs at least one value")
    if not all(items):
        raise UserError(f"--{kind} {key}: empty value in {text!r}")
    return items


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch in "[({"
        depth -= ch in "])}"
        if depth < 0:
            return False
    return depth == 0


def _check_bounds(kind: str, key: str, spec: Spec) -> None:
    if isinstance(spec, (Uniform, RandInt)):
        if not spec.low < spec.high:
            raise UserError(f"--{kind} {key}: the lower bound {spec.low:g} must be below the "
                            f"upper bound {spec.high:g}")
        if isinstance(spec, LogUniform) and spec.low <= 0:
            raise UserError(f"--{kind} {key}: bounds must be positive, got {spec.low:g}")


# -- validation: everything a trial could reject, before any trial starts --------------------
@dataclass
class Plan:
    """A validated search: what every trial gets (`fixed`), what varies (`space`)."""

    algo: str
    env: str
    space: dict[str, Spec]
    fixed: dict[str, Any]
    metric: str
    mode: str
    samples: int
    seed: int
    max_steps: int
    eval_every: int
    search: str
    scheduler: str

    @property
    def grid_size(self) -> int:
        return math.prod(len(s.values) for s in self.space.values() if isinstance(s, Grid))

    @property
    def trials(self) -> int:
        return self.grid_size * self.samples

    @property
    def seeds_vary(self) -> bool:
        """Seeds seed .. seed+samples-1 are a hidden grid (random search, several samples)."""
        return self.search == "random" and self.samples > 1 and "seed" not in self.space


def suggest(key: str, names: Sequence[str]) -> list[str]:
    """Fields close to `key`: by spelling, or whose words' initials spell it (lr)."""
    close = difflib.get_close_matches(key, names, n=3)
    initials = [n for n in names if "_" in n and "".join(w[0] for w in n.split("_")) == key]
    parts = [n for n in names if len(key) >= 3 and key in n.split("_")]
    return list(dict.fromkeys(initials + close + parts))[:3]


def check_space(algo: str, env: str, space: Mapping[str, Any], fixed: Mapping[str, Any], *,
                metric: str = "steps_to_solve", mode: str | None = None, samples: int = 1,
                seed: int = 0, search: str = "random", scheduler: str | None = None,
                build_agent: bool = True) -> Plan:
    """Validate a search completely (keys, types, bounds, configs; with `build_agent`, one
    agent of the base config, which checks the environment's spaces) and return its Plan.
    Raises UserError with one line for anything a trial would reject."""
    from gymlab.agents import algorithm
    from gymlab.agents.base import resolve_configs
    from gymlab.core.config import coerce
    from gymlab.core.envs import check_env_id
    from gymlab.core.run import RunConfig

    if algo not in ALGORITHMS:
        close = difflib.get_close_matches(algo, list(ALGORITHMS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"unknown algorithm {algo!r} (one of: {', '.join(ALGORITHMS)}){hint}")
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r} (one of: {', '.join(METRICS)})")
    mode = mode or DEFAULT_MODE[metric]
    if mode not in ("min", "max"):
        raise UserError(f"mode must be min or max, got {mode!r}")
    if search not in SEARCHERS:
        raise UserError(f"unknown search {search!r} (one of: {', '.join(SEARCHERS)})")
    scheduler = scheduler or "fifo"
    if scheduler not in SCHEDULERS:
        raise UserError(f"unknown scheduler {scheduler!r} (one of: {', '.join(SCHEDULERS)})")
    if not isinstance(samples, int) or samples < 1:
        raise UserError(f"samples must be a positive integer, got {samples!r}")
    check_env_id(env)
    cls = algorithm(algo)
    types_ = {**typing.get_type_hints(RunConfig), **typing.get_type_hints(cls.Config)}
    names = [f.name for f in dataclasses.fields(RunConfig)] + [
        f.name for f in dataclasses.fields(cls.Config)]

    fixed = dict(fixed)
    space = dict(space)
    for key, value in list(space.items()):  # plain values in a space are fixed values
        if not isinstance(value, (Grid, Choice, Uniform, RandInt)):
            fixed[key] = space.pop(key)
    for key in [*space, *fixed]:
        if key not in types_:
            close = suggest(key, names)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"unknown config field {key!r} for {algo}{hint}")
        if key in NOT_SEARCHABLE and (key in space or key in ("env", "logdir", "progress")):
            raise UserError(f"cannot search over {key}: {NOT_SEARCHABLE[key]}")
    for key in space.keys() & fixed.keys():
        raise UserError(f"{key} is both searched and fixed")
    fixed.pop("torch_threads", None)
    fixed.setdefault("seed", seed)

    def build(key: str, value: Any, what: str) -> Any:
        """The value as the field's type, after the dataclasses accepted it."""
        try:
            value = coerce(types_[key], value, key)
            _check_type(types_[key], value, key)
            resolve_configs(algo, cls.Config, env, {**fixed, key: value})
        except UserError as exc:
            message = str(exc).removeprefix(f"{key}: ")
            raise UserError(f"{what}: {message}") from None
        return value

    base_run, _ = resolve_configs(algo, cls.Config, env, fixed)
    if build_agent:  # the environment's spaces, the networks: what every trial starts with
        cls(env, **{**fixed, "logdir": None, "progress": False})
    checked: dict[str, Spec] = {}
    for key, spec in space.items():
        kind = _kind(spec)
        what = f"--{kind} {key}"
        inner = _unwrap(types_[key])
        if isinstance(spec, (Grid, Choice)):
            if not spec.values:
                raise UserError(f"{what}: needs at least one value")
            values = tuple(build(key, v, what) for v in spec.values)
            if len(set(map(repr, values))) != len(values):
                raise UserError(f"{what}: a value is repeated in {_show_all(values)}")
            checked[key] = type(spec)(values)
            continue
        if isinstance(spec, Uniform) and inner is not float:
            hint = "--randint" if inner is int else "--grid or --choice"
            raise UserError(f"{what}: {key} is not a float field; use {hint}")
        if isinstance(spec, RandInt) and inner not in (int, float):
            raise UserError(f"{what}: {key} is not a numeric field; use --grid or --choice")
        number = int if isinstance(spec, RandInt) else float
        for bound in (spec.low, spec.high):
            if isinstance(bound, bool) or not isinstance(bound, (int, float)) or (
                    number is int and not isinstance(bound, int)):
                raise UserError(f"{what}: bounds must be {number.__name__}s, got {bound!r}")
        _check_bounds(kind, key, spec)
        for bound in (spec.low, spec.high):
            build(key, number(bound), what)
        checked[key] = spec

    plan = Plan(algo, env, checked, fixed, metric, mode, samples, seed, base_run.total_steps,
                base_run.eval_every, search, scheduler)
    if base_run.eval_every <= 0 or any(
            isinstance(s, Grid) and 0 in s.values for k, s in checked.items() if k == "eval_every"):
        raise UserError("a search needs evaluations: eval_every must be positive")
    if metric.endswith("_to_solve"):
        stops = [base_run.stop_reward]
        if "stop_reward" in checked:
            stops = list(getattr(checked["stop_reward"], "values", [0.0]))
        if any(s is None for s in stops):
            raise UserError(f"metric {metric} needs a stop reward (--stop-reward R): "
                            f"{env} has none in the tuned table")
    if search == "optuna" and not checked:
        raise UserError("search optuna needs at least one searched field")
    return plan


def _unwrap(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _check_type(tp: Any, value: Any, key: str) -> None:
    """Reject a value of the wrong type (the dataclasses do not check types)."""
    inner = _unwrap(tp)
    if value is None:
        if inner is tp:
            raise UserError(f"{key} cannot be none")
        return
    origin = typing.get_origin(inner)
    ok = True
    if inner is bool:
        ok = isinstance(value, bool)
    elif inner is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif inner is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif inner is str:
        ok = isinstance(value, str)
    elif origin is dict:
        ok = isinstance(value, dict)
    elif origin is tuple:
        item = typing.get_args(inner)[0]
        ok = isinstance(value, tuple) and all(
            isinstance(v, item) and not isinstance(v, bool) for v in value)
    if not ok:
        raise UserError(f"{key}: expected {getattr(inner, '__name__', inner)}, got {value!r}")


# -- showing values ------------------------------------------------------------------------------
def show(value: Any) -> str:
    """A value as the command line writes it: tuples as [a,b], floats short."""
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _show_all(values: Sequence[Any]) -> str:
    return "[" + ", ".join(show(v) for v in values) + "]"


def _flag_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def _exact(value: Any) -> str:
    """A tuple or dict as text the configs parse back to the same value."""
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(map(repr, value)) + "]"
    return json.dumps(value, separators=(",", ":"))


def _encode(value: Any) -> Any:
    """Grid and choice values as Ray (and Optuna) can carry them: tuples and dicts as the
    strings the configs parse back."""
    return _exact(value) if isinstance(value, (tuple, dict)) else value


# -- results -------------------------------------------------------------------------------------
COLUMNS = ("trial", "status", "outcome")
METRIC_COLUMNS = ("steps_to_solve", "eval_return", "last_eval_return", "wall_to_solve",
                  "steps", "wall_s", "run_dir", "error")


@dataclass
class TuneResults:
    """Every trial of a search, best first (failed trials last). Iterate for the rows."""

    rows: list[dict[str, Any]]
    path: Path
    plan: Plan
    searched: list[str]
    interrupted: int | None = None
    """The signal that stopped the search (SIGINT, SIGTERM), or None."""

    @property
    def metric(self) -> str:
        return self.plan.metric

    @property
    def csv(self) -> Path:
        return self.path / "tune_results.csv"

    @property
    def best(self) -> dict[str, Any] | None:
        ok = [r for r in self.rows if r["status"] in ("completed", "stopped")
              and _finite(r.get(self.metric))]
        return ok[0] if ok else None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "failed"]

    def __iter__(self) -> typing.Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def to_dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)

    def train_command(self, row: Mapping[str, Any]) -> str:
        """The `gymlab train` command line of a trial's config."""
        import shlex

        values = {**self.plan.fixed, **{k: row[k] for k in self.searched}}
        flags = [f"--{k.replace('_', '-')} {shlex.quote(_flag_value(v))}"
                 for k, v in values.items()]
        return " ".join(["gymlab train", self.plan.algo, "--env", self.plan.env, *flags])

    def summary(self) -> list[str]:
        """What the CLI prints at the end: the best trial and where everything is."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        lines = []
        best = self.best
        if best is not None:
            values = " ".join(f"{k}={show(best[k])}" for k in self.searched)
            lines += [f"best: {best['trial']} {_metrics_text(self.plan, best)}",
                      *([f"  {values}"] if values else []),
                      f"  run directory: {best['run_dir']}",
                      f"  train it: {self.train_command(best)}"]
        for row in self.failed[:3]:
            lines.append(f"failed: {row['trial']}: {row['error']}")
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        lines.append(f"wrote {self.csv}: {len(self.rows)} trials ({parts or 'none finished'})")
        return lines


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def rank_key(metric: str, mode: str) -> typing.Callable[[dict[str, Any]], tuple]:
    sign = 1 if mode == "min" else -1

    def key(row: dict[str, Any]) -> tuple:
        value = row.get(metric)
        if row["status"] == "failed" or not _finite(value):
            return (2, 0.0, 0.0)
        ret = row.get("eval_return")
        tie = -ret if _finite(ret) else math.inf
        solved = metric.endswith("_to_solve") and mode == "min"
        return (0 if not solved or row.get("outcome") == "solved" else 1, sign * value, tie)

    return key


def write_csv(path: Path, rows: Sequence[dict[str, Any]], searched: Sequence[str]) -> None:
    columns = [*COLUMNS, *searched, *METRIC_COLUMNS]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _exact(v) if isinstance(v, (tuple, dict)) else
                             ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
                             for k, v in row.items()})
    os.replace(tmp, path)


# -- one trial (runs in a Ray worker process) ----------------------------------------------------
@dataclass(frozen=True)
class _Setup:
    algo: str
    env: str
    fixed: dict[str, Any]
    path: str
    threads: int


def _trial(config: dict[str, Any], setup: _Setup) -> None:
    import traceback

    from ray import tune

    from gymlab.agents import algorithm

    trial_dir = Path(setup.path) / tune.get_context().get_trial_name()
    overrides = {**setup.fixed, **config, "logdir": str(trial_dir), "progress": False,
                 "torch_threads": setup.threads}
    try:
        agent = algorithm(setup.algo)(setup.env, **overrides)
        max_steps = agent.run_config.total_steps
        stop_reward = agent.run_config.stop_reward
        state: dict[str, Any] = {"best": -math.inf, "last": math.nan, "solved": None}
        start = time.perf_counter()

        def metrics(step: int, outcome: str) -> dict[str, Any]:
            wall = time.perf_counter() - start
            solved = state["solved"]
            return {
                "step": step,
                "steps": step,
                "outcome": outcome,
                "solved": solved is not None,
                "steps_to_solve": solved[0] if solved else max_steps,
                "wall_to_solve": solved[1] if solved else wall * max_steps / max(step, 1),
                "eval_return": state["best"] if state["best"] > -math.inf else math.nan,
                "last_eval_return": state["last"],
                "wall_s": wall,
                "run_dir": str(agent.run.path) if agent.run else "",
            }

        def on_eval(step: int, result: Any) -> bool:
            state["best"] = max(state["best"], result.mean)
            state["last"] = result.mean
            if state["solved"] is None and stop_reward is not None and result.mean >= stop_reward:
                state["solved"] = (step, time.perf_counter() - start)
            tune.report(metrics(step, "running"))
            return False

        agent.learn(on_eval=on_eval)
    except Exception:
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "error.txt").write_text(traceback.format_exc())
        raise
    tune.report(metrics(agent.step, agent.outcome))


def _trial_dir_name(index: int, total: int) -> str:
    return f"trial-{index:0{max(3, len(str(total - 1)))}d}"


# -- the search ----------------------------------------------------------------------------------
def run(algo: str, env: str = "CartPole-v1", space: Mapping[str, Any] | None = None, *,
        metric: str = "steps_to_solve", mode: str | None = None, samples: int = 1,
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
        _check_reachable(ray_address)
    _import_ray(plan)
    with _Ray(ray_address, cpus_per_trial) as ray_cpus:
        path = _create_dir(Path(logdir), f"tune-{algo}-{env.replace('/', '_')}")
        return _Search(plan, path, cpus_per_trial, ray_cpus, progress).run()


def _import_ray(plan: Plan) -> None:
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserError(f"gymlab tune needs Ray Tune: {INSTALL_HINT}") from None
    if not all(hasattr(tune, name) for name in ("report", "get_context", "RunConfig")):
        raise UserError(f"gymlab tune needs Ray >= 2.41, found {ray.__version__}: "
                        f"{INSTALL_HINT}")
    if plan.search == "optuna":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise UserError(f"--search optuna needs optuna: {INSTALL_HINT}") from None


def _quiet_ray_environment() -> None:
    """Before ray is imported: no usage reporting, no log files' spam, our SIGINT handling."""
    for key, value in {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_DEDUP_LOGS": "0",
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
        "TUNE_DISABLE_SIGINT_HANDLER": "1",
        "RAY_AIR_NEW_OUTPUT": "0",
        "RAY_CHDIR_TO_TRIAL_DIR": "0",
        "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S": "1000000",
        "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
        "PYTHONWARNINGS": "ignore",
    }.items():
        os.environ.setdefault(key, value)


class _Ray:
    """Connects to `address`, or starts a local instance with every CPU; shuts down what it
    started. An unreachable address is a UserError after a short timeout."""

    def __init__(self, address: str | None, cpus_per_trial: int) -> None:
        self.address, self.cpus_per_trial = address, cpus_per_trial
        self.started = False

    def __enter__(self) -> int:
        import logging
        import warnings

        _quiet_ray_environment()
        warnings.filterwarnings("ignore", module="ray")
        import ray

        # failed trials are reported by the display and in error.txt, not by Ray's tracebacks
        self.logger = logging.getLogger("ray")
        self.log_level = self.logger.level
        self.logger.setLevel(logging.CRITICAL)
        if ray.is_initialized():  # the caller's own Ray: use it, leave it running
            return self._cpus(ray)
        quiet = {"log_to_driver": False, "configure_logging": False,
                 "logging_level": logging.ERROR}
        if self.address is None:
            cpus = os.cpu_count() or 1
            if self.cpus_per_trial > cpus:
                raise UserError(f"--cpus-per-trial {self.cpus_per_trial}: this machine has "
                                f"{cpus} CPUs")
            temp = {} if os.environ.get("RAY_TMPDIR") else {"_temp_dir": RAY_TEMP_DIR}
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **temp, **quiet)
        else:
            # Ray retries a rejected connection once a second for 20 s (read at call time;
            # RAY_NUM_REDIS_GET_RETRIES sets it), its C++ core logging every try to fd 2
            from ray._private import ray_constants

            retries = getattr(ray_constants, "NUM_REDIS_GET_RETRIES", None)
            if retries is not None and "RAY_NUM_REDIS_GET_RETRIES" not in os.environ:
                ray_constants.NUM_REDIS_GET_RETRIES = 5
            with _captured_stderr() as captured:
                try:
                    ray.init(address=self.address, **quiet)
                    error = None
                except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
                    error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                finally:
                    if retries is not None:
                        ray_constants.NUM_REDIS_GET_RETRIES = retries
            if error is not None:
                if "InvalidAuthToken" in captured.text and not os.environ.get("RAY_AUTH_MODE"):
                    error += " (the cluster uses token authentication: set RAY_AUTH_MODE=token)"
                elif "InvalidAuthToken" in captured.text:
                    error += " (the cluster rejected the authentication token)"
                raise UserError(f"cannot connect to the Ray cluster at {self.address}: "
                                f"{error}")
        self.started = True
        try:
            return self._cpus(ray)
        except BaseException:
            self.__exit__()
            raise

    def _cpus(self, ray: Any) -> int:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if self.cpus_per_trial > cpus:
            raise UserError(f"--cpus-per-trial {self.cpus_per_trial}: the Ray cluster has "
                            f"{cpus} CPUs")
        return cpus

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            import ray

            ray.shutdown()
            self.started = False
        self.logger.setLevel(self.log_level)


class _captured_stderr:  # noqa: N801  (a context manager used like a function)
    """Send file descriptor 2 (where Ray's C++ core logs) to a file for a while; `.text`."""

    def __enter__(self) -> _captured_stderr:
        import tempfile

        sys.stderr.flush()
        self.file = tempfile.TemporaryFile(mode="w+")
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        self.text = ""
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read()
        self.file.close()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A TCP connection to host:port (ray://host:port), so a wrong address fails at once."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise UserError(f"--ray-address: expected HOST:PORT (or ray://HOST:PORT, auto), "
                        f"got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(f"cannot reach a Ray cluster at {address}: {reason}") from None


def _create_dir(logdir: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        path = logdir / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
        try:
            path.mkdir(parents=True)
            return path.resolve()
        except FileExistsError:
            continue
        except OSError as exc:
            raise UserError(f"cannot create {path}: {exc.strerror}") from None
    raise AssertionError


class _Search:
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
                space[key] = tune.grid_search([_encode(v) for v in spec.values])
            elif isinstance(spec, (Grid, Choice)):
                space[key] = tune.choice([_encode(v) for v in spec.values])
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
                self.names[trial.trial_id] = _trial_dir_name(len(self.names), plan.trials)
            return self.names[trial.trial_id]

        setup = _Setup(plan.algo, plan.env, {k: _encode(v) for k, v in plan.fixed.items()},
                       str(self.path), self.cpus_per_trial)
        trainable = tune.with_resources(tune.with_parameters(_trial, setup=setup),
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
            with _Signals(self):
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
            row[key] = _decode(self.plan, key, trial.config.get(key))
        for key in METRIC_COLUMNS:
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


def _decode(plan: Plan, key: str, value: Any) -> Any:
    if key in plan.space and isinstance(plan.space[key], (Grid, Choice)):
        for v in plan.space[key].values:
            if _encode(v) == value:
                return v
    return value


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


class _Signals:
    """The first SIGINT/SIGTERM stops the search after its running trials are stopped (their
    run directories keep the last checkpoint); a second one aborts at once."""

    def __init__(self, search: _Search) -> None:
        self.search = search
        self.previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: Any) -> None:
        if self.search.interrupted is not None:
            raise KeyboardInterrupt
        self.search.interrupted = signum
        self.search.stop_event.set()
        if self.search.display:
            self.search.display.say("stopping the search: running trials are stopped, "
                                    "finished ones kept (press Ctrl-C again to abort)")

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _callback(search: _Search) -> Any:
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


# -- the live view -------------------------------------------------------------------------------
class Display:
    """On a terminal: a table of the trials redrawn in place, at most once a second. Otherwise:
    one line per trial that starts or ends, and a status line every 30 s."""

    def __init__(self, search: _Search, stream: typing.TextIO) -> None:
        self.search, self.stream = search, stream
        self.tty = stream.isatty()
        self.drawn = 0  # lines of the table on screen
        self.last_draw = 0.0
        self.last_status = time.perf_counter()

    def say(self, line: str) -> None:
        self._erase()
        print(line, file=self.stream, flush=True)

    def _erase(self) -> None:
        if self.tty and self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _values(self, config: Mapping[str, Any]) -> str:
        return " ".join(f"{k}={show(_decode(self.search.plan, k, config.get(k)))}"
                        for k in self.search.searched)

    def started(self, trial: Any) -> None:
        if not self.tty:
            name = self.search.names.get(trial.trial_id, trial.trial_id)
            self.say(f"{name} started: {self._values(trial.config)}".rstrip(": "))

    def ended(self, row: dict[str, Any]) -> None:
        if self.tty:
            return
        if row["status"] == "failed":
            self.say(f"{row['trial']} FAILED: {row['error']}")
        else:
            what = row["outcome"] if row["status"] == "completed" else row["status"]
            self.say(f"{row['trial']} {what}: "
                     f"{_metrics_text(self.search.plan, row)}")

    def tick(self, trials: list) -> None:
        now = time.perf_counter()
        if self.tty and now - self.last_draw >= 1.0:
            self.last_draw = now
            self._erase()
            lines = self.table(trials)
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
            self.drawn = len(lines)
        elif not self.tty and now - self.last_status >= 30.0:
            self.last_status = now
            self.say(self.status(trials))

    def status(self, trials: list, results: TuneResults | None = None) -> str:
        results = results or self.search.results()
        counts: dict[str, int] = {}
        for row in results.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        pending = len(trials) - len(results.rows)
        if pending > 0:
            counts["pending"] = pending
        elapsed = time.perf_counter() - self.search.started
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        text = f"[{_clock(elapsed)}] {parts}"
        if results.best:
            text += f"; best {results.best['trial']}: " + _metrics_text(
                self.search.plan, results.best)
        return text

    def table(self, trials: list, limit: int = 20) -> list[str]:
        """Running trials, then finished ones best first, then pending ones."""
        plan = self.search.plan
        keys = self.search.searched
        results = self.search.results()
        started = {row["trial"] for row in results.rows}
        rows = sorted(results.rows, key=lambda r: r["status"] != "running")
        pending = [{"trial": self.search.names.get(t.trial_id, "-"), "status": "pending",
                    **{k: _decode(plan, k, t.config.get(k)) for k in keys}}
                   for t in trials if self.search.names.get(t.trial_id) not in started]
        header = ["trial", "status", *keys, "steps", "eval_return", plan.metric]
        cells = [[row["trial"], row["outcome"] if row["status"] == "completed" else
                  row["status"], *(show(row.get(k)) for k in keys), _num(row.get("steps")),
                  _num(row.get("eval_return")), _num(row.get(plan.metric))]
                 for row in [*rows, *pending]]
        hidden = len(cells) - limit
        cells = cells[:limit]
        widths = [max(len(str(c)) for c in col) for col in zip(header, *cells)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [self.status(trials, results), fmt.format(*header),
                 *(fmt.format(*r).rstrip() for r in cells)]
        if hidden > 0:
            lines.append(f"... and {hidden} more")
        return lines

    def close(self) -> None:
        self._erase()
        trials = list(self.search.trials.values())
        if self.tty and trials:
            print("\n".join(self.table(trials, limit=10**6)), file=self.stream, flush=True)


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _metrics_text(plan: Plan, row: Mapping[str, Any]) -> str:
    text = f"{plan.metric}={_num(row.get(plan.metric))}"
    if plan.metric != "eval_return":
        text += f" eval_return={_num(row.get('eval_return'))}"
    return text + f" ({_num(row.get('wall_s'))} s, {row.get('steps', '')} steps)"


__all__ = ["Choice", "Grid", "LogUniform", "METRICS", "Plan", "RandInt", "TuneResults",
           "Uniform", "check_space", "choice", "grid", "loguniform", "parse_spec", "randint",
           "run", "uniform"]

