"""The parser every `gymlab` command builds on, and the argument helpers commands share.

A command that picks something by name (`train ALGO`, `tune ALGO`, `nas build-table`,
`meta maml`) is parsed in two stages, both by argparse: the first parser knows the command's
own flags and collects the rest (`REST`, nargs=REMAINDER) behind the name; the second, built
for that name (with an algorithm's config flags, whose modules import torch), parses the
rest into the same namespace. So `gymlab --help` imports no algorithm, and a misspelled flag
is reported as a flag instead of its value being taken for the name. (`train --resume
RUN_DIR` is the one case where the name is not on the command line: the run's config.json
names the algorithm, whose parser then reads the whole command line.)
"""

from __future__ import annotations

import argparse
import difflib
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

EXIT_USER_ERROR = 2

REST = "rest"
"""Namespace attribute of a first stage's remaining arguments (the name and its flags)."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (`gymlab: error: ...`, exit code 2), a "did you mean"
    for a misspelled flag, and no abbreviated flags."""

    def __init__(self, *args: Any, description: str | None = None, **kwargs: Any) -> None:
        self.flags: list[str] = []  # every option string, for suggestions; filled by add_argument
        # the epilog (lists of commands, algorithms) keeps its lines; the description is filled
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # --seed must not silently mean --seeds
        super().__init__(*args, description=description and textwrap.fill(description, 79),
                         **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.flags.extend(action.option_strings)
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def add_to_group(*names: Any, **options: Any) -> argparse.Action:
            action = add(*names, **options)
            self.flags.extend(action.option_strings)
            return action

        group.add_argument = add_to_group  # type: ignore[method-assign]
        return group

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unrecognized(extras, self.flags))
        return namespace

    def error(self, message: str) -> NoReturn:
        print(f"gymlab: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)

    def add_rest(self, metavar: str, help: str) -> None:
        """The first stage's name and everything after it, for the second stage."""
        self.add_argument(REST, nargs=argparse.REMAINDER, metavar=metavar, help=help)

    def choose(self, name: str, choices: Sequence[str], what: str) -> str:
        """`name` if it is one of `choices`, else a one-line error naming the closest."""
        if name not in choices:
            close = difflib.get_close_matches(name, list(choices), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            self.error(f"argument {what}: invalid choice: {name!r} (choose from "
                       f"{', '.join(choices)}){hint}")
        return name


def unrecognized(extras: Sequence[str], flags: Sequence[str]) -> str:
    """The message for arguments no parser took: the first unknown flag (with the closest
    known one), else the first stray value."""
    unknown = next((arg for arg in extras if arg.startswith("-")), extras[0])
    name = unknown.split("=", 1)[0]
    # compared without the dashes, which every flag shares
    close = difflib.get_close_matches(name.lstrip("-"), [f[2:] for f in flags
                                                         if f.startswith("--")], n=1, cutoff=0.7)
    hint = f"; did you mean --{close[0]}?" if close and name.startswith("--") else ""
    return f"unrecognized argument {name if name.startswith('-') else unknown}{hint}"


def second_stage(first: Parser, args: argparse.Namespace, choices: Sequence[str], what: str,
                 parser_for: Callable[[str], Parser]) -> str | None:
    """Parse `args.rest` (NAME then its flags) with `parser_for(NAME)` into `args`; the name,
    or None when the first stage had nothing after its own flags."""
    rest = getattr(args, REST)
    delattr(args, REST)
    if not rest:
        return None
    name = first.choose(rest[0], choices, what)
    parser_for(name).parse_args(rest[1:], namespace=args)
    return name


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def algorithm_summaries() -> dict[str, str]:
    """Registry name -> one-line description, without importing any algorithm."""
    from gymlab.registry import ALGORITHMS

    return {name: summary for name, (_, summary) in ALGORITHMS.items()}


def listing(title: str, items: dict[str, str]) -> str:
    """An epilog section: one aligned `name  description` line per item."""
    width = max(map(len, items))
    return "\n".join([f"{title}:", *(f"  {name:<{width}}  {text}" for name, text in items.items())])


def add_config_flags(parser: Parser, cls: Any, run_title: str = "run options") -> None:
    """One flag per field of RunConfig (those the algorithm's Config does not have itself)
    and of the algorithm `cls`'s Config. Unset flags stay out of the namespace."""
    import dataclasses

    from gymlab.core.config import add_arguments
    from gymlab.core.run import RunConfig

    own = {f.name for f in dataclasses.fields(cls.Config)}
    add_arguments(parser, RunConfig, run_title,
                  only=[f.name for f in dataclasses.fields(RunConfig) if f.name not in own],
                  defaults={"env": cls.default_env, **cls.RUN_DEFAULTS})
    add_arguments(parser, cls.Config, f"{cls.algo} hyperparameters")


def config_values(args: argparse.Namespace, cls: Any) -> dict[str, Any]:
    """The RunConfig and Config fields of algorithm `cls` set on the command line."""
    import dataclasses

    from gymlab.core.run import RunConfig

    names = {f.name for f in dataclasses.fields(RunConfig)} | {
        f.name for f in dataclasses.fields(cls.Config)}
    return {key: value for key, value in vars(args).items() if key in names}


def add_checkpoint_args(parser: Parser, run_help: str = "a run directory (or a checkpoint "
                        "file)") -> None:
    parser.add_argument("run", metavar="RUN_DIR", help=run_help)
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which checkpoint of the run (default: best, else last)")
