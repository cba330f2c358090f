"""Validation: everything a trial could reject (keys, types, bounds, configs, the
environment's spaces), checked before any trial starts, and the resulting Plan of a search."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from gymlab.core.errors import UserError
from gymlab.registry import ALGORITHMS
from gymlab.tune.plan import Plan
from gymlab.tune.space import Choice, Grid, RandInt, Spec, Uniform, check_bounds, spec_kind
from gymlab.tune.values import show_all

METRICS = ("steps_to_solve", "eval_return", "last_eval_return", "wall_to_solve")
"""What a search can optimise; see the gymlab.tune docstring."""
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


def metrics_of(cls: Any) -> tuple[str, ...]:
    """The metrics a search of algorithm `cls` can optimise: METRICS, and the name its
    scores have (best_valid_acc for a network search: the same value as eval_return)."""
    return METRICS if cls.score_name in METRICS else (*METRICS, cls.score_name)


def suggest(key: str, names: Sequence[str]) -> list[str]:
    """Fields close to `key`: by spelling, or whose words' initials spell it (lr)."""
    close = difflib.get_close_matches(key, names, n=3)
    initials = [n for n in names if "_" in n and "".join(w[0] for w in n.split("_")) == key]
    parts = [n for n in names if len(key) >= 3 and key in n.split("_")]
    return list(dict.fromkeys(initials + close + parts))[:3]


def check_space(algo: str, env: str | None, space: Mapping[str, Any], fixed: Mapping[str, Any], *,
                metric: str | None = None, mode: str | None = None, samples: int = 1,
                seed: int = 0, search: str = "random", scheduler: str | None = None,
                build_agent: bool = True) -> Plan:
    """Validate a search completely (keys, types, bounds, configs; with `build_agent`, one
    agent of the base config, which checks the environment's spaces) and return its Plan.
    Raises UserError with one line for anything a trial would reject."""
    from gymlab.core.algorithm import resolve_configs
    from gymlab.core.config import coerce
    from gymlab.core.envs import check_env_id
    from gymlab.core.run import RunConfig
    from gymlab.registry import algorithm

    if algo not in ALGORITHMS:
        close = difflib.get_close_matches(algo, list(ALGORITHMS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"unknown algorithm {algo!r} (one of: {', '.join(ALGORITHMS)}){hint}")
    cls = algorithm(algo)
    metrics = metrics_of(cls)
    if metric is not None and metric not in metrics:
        raise UserError(f"unknown metric {metric!r} for {algo} (one of: {', '.join(metrics)})")
    if mode not in (None, "min", "max"):
        raise UserError(f"mode must be min or max, got {mode!r}")
    if search not in SEARCHERS:
        raise UserError(f"unknown search {search!r} (one of: {', '.join(SEARCHERS)})")
    scheduler = scheduler or "fifo"
    if scheduler not in SCHEDULERS:
        raise UserError(f"unknown scheduler {scheduler!r} (one of: {', '.join(SCHEDULERS)})")
    if not isinstance(samples, int) or samples < 1:
        raise UserError(f"samples must be a positive integer, got {samples!r}")
    env = env or cls.default_env
    if not build_agent:  # building one checks the id in the algorithm's own way
        check_env_id(env)
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
            resolve_configs(cls, env, {**fixed, key: value})
        except UserError as exc:
            message = str(exc).removeprefix(f"{key}: ")
            raise UserError(f"{what}: {message}") from None
        return value

    base_run, _ = resolve_configs(cls, env, fixed)
    if metric is None:  # how fast it solves where there is a stop reward, else how well
        solvable = base_run.stop_reward is not None or "stop_reward" in space
        metric = "steps_to_solve" if solvable else cls.score_name
    mode = mode or DEFAULT_MODE.get(metric, "max")
    if build_agent:  # the environment's spaces, the networks: what every trial starts with
        cls(env, **{**fixed, "logdir": None, "progress": False})
    checked: dict[str, Spec] = {}
    for key, spec in space.items():
        kind = spec_kind(spec)
        what = f"--{kind} {key}"
        inner = _unwrap(types_[key])
        if isinstance(spec, (Grid, Choice)):
            if not spec.values:
                raise UserError(f"{what}: needs at least one value")
            values = tuple(build(key, v, what) for v in spec.values)
            if len(set(map(repr, values))) != len(values):
                raise UserError(f"{what}: a value is repeated in {show_all(values)}")
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
        check_bounds(kind, key, spec)
        for bound in (spec.low, spec.high):
            build(key, number(bound), what)
        checked[key] = spec

    plan = Plan(algo, env, checked, fixed, metric, mode, samples, seed, base_run.total_steps,
                base_run.eval_every, search, scheduler)
    no_evaluations = base_run.eval_every <= 0 or any(
        isinstance(s, Grid) and 0 in s.values for k, s in checked.items() if k == "eval_every")
    if no_evaluations and not cls.scores_itself:  # one that does reports every iteration
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
