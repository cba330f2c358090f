"""Search-space specs (`grid`, `choice`, `uniform`, `loguniform`, `randint`) and the parsing
of the command line's KEY=VALUES strings into them. Values stay as given here: `check_space`
(gymlab.tune.validate) converts and checks them against the config fields."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gymlab.core.errors import UserError


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


def spec_kind(spec: Spec) -> str:
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
    check_bounds(kind, key, spec)
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


def check_bounds(kind: str, key: str, spec: Spec) -> None:
    if isinstance(spec, (Uniform, RandInt)):
        if not spec.low < spec.high:
            raise UserError(f"--{kind} {key}: the lower bound {spec.low:g} must be below the "
                            f"upper bound {spec.high:g}")
        if isinstance(spec, LogUniform) and spec.low <= 0:
            raise UserError(f"--{kind} {key}: bounds must be positive, got {spec.low:g}")
