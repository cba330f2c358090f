"""Configs are frozen dataclasses with a docstring under each field.

Everything user-facing is derived from them: CLI flags (name, type, default, help text),
config.json, and the keyword arguments of the Python API. A hyperparameter is written once.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import inspect
import json
import textwrap
import types
import typing
from functools import cache
from typing import Any, Literal

from gymlab.core.errors import UserError


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (and of its bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, following in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def parse_value(tp: Any, text: str) -> Any:
    """Convert one command-line string to a field's type; ValueError with a clear message."""
    inner, optional = _unwrap_optional(tp)
    if optional and text.lower() in ("none", "null", ""):
        return None
    origin = typing.get_origin(inner)
    if origin is Literal:
        choices = typing.get_args(inner)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text
    try:
        if inner is bool:
            return {"1": True, "true": True, "yes": True, "on": True,
                    "0": False, "false": False, "no": False, "off": False}[text.lower()]
        if inner in (int, float, str):
            return inner(text)
        if origin is dict:
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(text)
            return value
        if origin is tuple:
            item_type = typing.get_args(inner)[0]
            parts = [p for p in text.replace("[", "").replace("]", "").split(",") if p.strip()]
            return tuple(item_type(p.strip()) for p in parts)
    except (ValueError, KeyError):  # json.JSONDecodeError is a ValueError
        raise ValueError(f"expected {_type_name(tp)}, got {text!r}") from None
    raise TypeError(f"unsupported config field type {tp!r}")


def coerce(tp: Any, value: Any, name: str) -> Any:
    """A value from the API or JSON as the field's type: strings parsed, lists made tuples,
    Literal choices checked (a UserError names the field)."""
    try:
        if isinstance(value, str) and tp is not str:
            return parse_value(tp, value)
        if isinstance(value, list):
            value = tuple(value)
        inner, _ = _unwrap_optional(tp)
        if typing.get_origin(inner) is Literal and value is not None:
            parse_value(tp, value)
    except ValueError as exc:
        raise UserError(f"{name}: {exc}") from None
    return value


def _type_name(tp: Any) -> str:
    inner, optional = _unwrap_optional(tp)
    origin = typing.get_origin(inner)
    if origin is Literal:
        name = "{" + ",".join(typing.get_args(inner)) + "}"
    elif origin is tuple:
        name = f"comma-separated {typing.get_args(inner)[0].__name__}s"
    elif origin is dict:
        name = "JSON object"
    else:
        name = getattr(inner, "__name__", str(inner))
    return f"{name} or none" if optional else name


def _metavar(tp: Any) -> str:
    if tp is bool:
        return "BOOL"
    name = _type_name(tp)
    return name if name.startswith("{") else name.upper().replace(" ", "_").replace("-", "_")


def flag(name: str) -> str:
    return name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type, title: str,
                  only: typing.Collection[str] | None = None,
                  defaults: typing.Mapping[str, Any] | None = None) -> None:
    """Add one `--flag` per field of `cls` (a bool flag alone means true). Unset flags stay
    absent from the namespace, so per-environment defaults can sit between the dataclass
    default and the command line. `defaults`: what the help shows instead of the dataclass's
    default (an algorithm's own run defaults)."""
    group = parser.add_argument_group(title)
    docs = field_docs(cls)
    types_ = _field_types(cls)
    for field in dataclasses.fields(cls):
        if only is not None and field.name not in only:
            continue
        tp = types_[field.name]
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        if defaults is not None and field.name in defaults:
            default = defaults[field.name]
        shown = (",".join(map(str, default)) if isinstance(default, tuple)
                 else json.dumps(default) if isinstance(default, dict) else default)
        bare = {"nargs": "?", "const": True} if tp is bool else {}
        group.add_argument(
            f"--{flag(field.name)}",
            dest=field.name,
            metavar=_metavar(tp),
            type=_argparse_type(tp),
            default=argparse.SUPPRESS,
            help=f"{docs.get(field.name, '')} (default: {shown})",
            **bare,
        )


def _argparse_type(tp: Any) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse_value(tp, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def check_keys(cls: type, keys: typing.Iterable[str], what: str = "option") -> None:
    """Reject keys that are not fields of `cls`, suggesting the closest ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in keys:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"unknown {what} {key!r} for {cls.__name__}{hint}")


def build(cls: type, *layers: dict[str, Any]) -> Any:
    """Instantiate `cls` from its defaults overlaid by each mapping in turn (later wins)."""
    values: dict[str, Any] = {}
    for layer in layers:
        check_keys(cls, layer)
        values.update(layer)
    types_ = _field_types(cls)
    values = {key: coerce(types_[key], value, key) for key, value in values.items()}
    return cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(config, f.name), tuple) else v
        for f in dataclasses.fields(config)
    }


def require(condition: bool, message: str) -> None:
    """Validate a config value: raise a UserError with `message` when `condition` is false."""
    if not condition:
        raise UserError(message)
