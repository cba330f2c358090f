"""`gymlab train ALGO [flags]` and `gymlab train --resume RUN_DIR [flags]`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from gymlab.cli.parser import (
    Parser,
    add_config_flags,
    algorithm_summaries,
    config_values,
    listing,
    second_stage,
    unrecognized,
)
from gymlab.core.errors import UserError

HELP = "train an agent (or resume a run)"

RESUME_HELP = "continue the run in RUN_DIR from its checkpoints/last.pt"


def parser() -> Parser:
    """First stage: --resume, or ALGO and the rest."""
    train = Parser(prog="gymlab train", usage="%(prog)s ALGO [flags]\n"
                   "       %(prog)s --resume RUN_DIR [flags]",
                   epilog=listing("algorithms", algorithm_summaries()),
                   description="Train an agent, or resume a run with --resume: then the flags "
                   "are those of the run's algorithm (gymlab train ALGO --help) that a resumed "
                   "run may change, such as --total-steps, --stop-reward, --progress.")
    train.add_argument("--resume", metavar="RUN_DIR", default=None, help=RESUME_HELP)
    train.add_rest("ALGO ...", "the algorithm, then its flags (gymlab train ALGO --help)")
    return train


def algorithm_parser(algo: str, prog: str | None = None, **kwargs: Any) -> Parser:
    """Second stage: every run option and hyperparameter of `algo`, and --resume."""
    from gymlab.registry import algorithm

    cls = algorithm(algo)
    summary = algorithm_summaries()[algo]
    kwargs.setdefault("usage", "%(prog)s [flags]\n       %(prog)s --resume RUN_DIR [flags]")
    sub = Parser(prog=prog or f"gymlab train {algo}",
                 description=f"{summary}. For environments with tuned values those come "
                 "before the defaults shown. config.json records what a run used.", **kwargs)
    # default None is set only where the first stage left no --resume (meta maml has none)
    sub.add_argument("--resume", metavar="RUN_DIR", default=None, help=RESUME_HELP)
    add_config_flags(sub, cls)
    return sub


def parse(argv: Sequence[str]) -> argparse.Namespace:
    first = parser()
    args, extras = first.parse_known_args(argv)
    if args.resume is not None:  # the flags are the run's algorithm's, wherever they stand
        args = algorithm_parser(run_algorithm(args.resume)).parse_args(argv)
        args.algo = None
        return args
    if extras:
        first.error(unrecognized(extras, first.flags) + "; flags follow the algorithm or the "
                    "run: gymlab train ALGO [flags], gymlab train --resume RUN_DIR [flags]")
    args.algo = second_stage(first, args, list(algorithm_summaries()), "ALGO",
                             algorithm_parser)
    if args.algo is None:
        first.error("train needs an algorithm (one of: " + ", ".join(algorithm_summaries())
                    + ") or --resume RUN_DIR")
    return args


def run(args: argparse.Namespace) -> int:
    return learn(args.algo, args).exit_code


def run_algorithm(run_dir: str) -> str:
    """The registry name of the algorithm whose run is in `run_dir` (its config.json)."""
    from gymlab.core.run import RunDir
    from gymlab.registry import ALGORITHMS

    algo = RunDir.open(run_dir).config().get("algo")
    if algo not in ALGORITHMS:
        raise UserError(f"{run_dir} holds a run of an unknown algorithm {algo!r}")
    return algo


def learn(algo: str | None, args: argparse.Namespace) -> Any:
    """Train `algo` with the flags in `args`, or resume `args.resume` (of `algo`, when given);
    the algorithm afterwards (closed; its exit_code says how the run ended)."""
    from gymlab.registry import algorithm

    if args.resume is not None:
        found = run_algorithm(args.resume)
        if algo is not None and algo != found:
            raise UserError(f"{args.resume} is a {found} run, not a {algo} run")
        cls = algorithm(found)
        agent = cls.resume(args.resume, **config_values(args, cls))
    else:
        cls = algorithm(algo)
        overrides = config_values(args, cls)
        agent = cls(overrides.pop("env", None), **overrides)
    with agent:
        agent.learn()
    return agent
