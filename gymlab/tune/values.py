"""Showing values as the command line writes them, and carrying grid and choice values
through Ray (and Optuna) as plain strings and back."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from gymlab.tune.plan import Plan
from gymlab.tune.space import Choice, Grid


def show(value: Any) -> str:
    """A value as the command line writes it: tuples as [a,b], floats short."""
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def show_all(values: Sequence[Any]) -> str:
    return "[" + ", ".join(show(v) for v in values) + "]"


def flag_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def exact(value: Any) -> str:
    """A tuple or dict as text the configs parse back to the same value."""
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(map(repr, value)) + "]"
    return json.dumps(value, separators=(",", ":"))


def encode(value: Any) -> Any:
    """Grid and choice values as Ray (and Optuna) can carry them: tuples and dicts as the
    strings the configs parse back."""
    return exact(value) if isinstance(value, (tuple, dict)) else value


def decode(plan: Plan, key: str, value: Any) -> Any:
    if key in plan.space and isinstance(plan.space[key], (Grid, Choice)):
        for v in plan.space[key].values:
            if encode(v) == value:
                return v
    return value


def show_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def metrics_text(plan: Plan, row: Mapping[str, Any]) -> str:
    text = f"{plan.metric}={show_number(row.get(plan.metric))}"
    if plan.metric != "eval_return":
        text += f" eval_return={show_number(row.get('eval_return'))}"
    return text + f" ({show_number(row.get('wall_s'))} s, {row.get('steps', '')} steps)"
