"""`gymlab train ALGO [flags]` and `gymlab train --resume RUN_DIR [flags]`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gymlab.cli.parser import (
    Parser,
    add_config_flags,
    algorithm_summaries,
    config_values,
    listing,
    second_stage,
)
from gymlab.core.errors import UserError

HELP = "train an agent (or resume a run)"

RESUME_HELP = "continue the run in RUN_DIR from its checkpoints/last.pt"


def parser() -> Parser:
    """First stage: --resume and the run options a resumed run may change, then ALGO."""
    from gymlab.core.config import add_arguments
    from gymlab.core.run import RunConfig

    train = Parser(prog="gymlab train", usage="%(prog)s ALGO [flags]\n"
                   "       %(prog)s --resume RUN_DIR [flags]",
                   epilog=listing("algorithms", algorithm_summaries()),
                   description="Train an agent, or resume a run with --resume.")
    train.add_argument("--resume", metavar="RUN_DIR", default=None, help=RESUME_HELP)
    # every run option, so that changing one a resumed run must keep gets a clear refusal
    add_arguments(train, RunConfig, "with --resume (only those the run's algorithm lets a "
                  "resumed run change, such as total_steps, stop_reward, progress)")
    train.add_rest("ALGO ...", "the algorithm, then its flags (gymlab train ALGO --help)")
    return train


def algorithm_parser(algo: str, prog: str | None = None) -> Parser:
    """Second stage: every run option and hyperparameter of `algo`, and --resume."""
    from gymlab.registry import algorithm

    cls = algorithm(algo)
    summary = algorithm_summaries()[algo]
    sub = Parser(prog=prog or f"gymlab train {algo}",
                 description=f"{summary}. The defaults shown are the config's; for "
                 "environments with tuned values those come first. config.json records what "
                 "a run used.")
    sub.add_argument("--resume", metavar="RUN_DIR", default=argparse.SUPPRESS, help=RESUME_HELP)
    add_config_flags(sub, cls)
    return sub


def parse(argv: Sequence[str]) -> argparse.Namespace:
    first = parser()
    args = first.parse_args(argv)
    args.algo = second_stage(first, args, list(algorithm_summaries()), "ALGO",
                             algorithm_parser)
    if args.algo is None and args.resume is None:
        first.error("train needs an algorithm (one of: " + ", ".join(algorithm_summaries())
                    + ") or --resume RUN_DIR")
    return args


def run(args: argparse.Namespace) -> int:
    return learn(args.algo, args)


def learn(algo: str | None, args: argparse.Namespace) -> int:
    """Train `algo` with the flags in `args`, or resume `args.resume` (of `algo`, when given);
    the run's exit code."""
    from gymlab.core.run import RunDir
    from gymlab.registry import ALGORITHMS, algorithm

    if args.resume is not None:
        found = RunDir.open(args.resume).config().get("algo")
        if found not in ALGORITHMS:
            raise UserError(f"{args.resume} holds a run of an unknown algorithm {found!r}")
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
    return agent.exit_code
