"""`gymlab eval RUN_DIR`: score a trained run (its adaptation curve for MAML, its leaderboard
for a network search: whatever the algorithm's eval_lines say)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gymlab.cli.parser import Parser, add_checkpoint_args, positive_int

HELP = "evaluate a trained agent: mean ± std return"


def parser() -> Parser:
    ev = Parser(prog="gymlab eval", description="Evaluate a trained run on fresh seeded "
                "episodes (what is printed depends on the algorithm).")
    add_checkpoint_args(ev)
    ev.add_argument("--episodes", type=positive_int, default=10, help="episodes (default: 10)")
    ev.add_argument("--seed", type=int, default=None,
                    help="seed of the first episode (default: the run's seed + 2000000)")
    return ev


def parse(argv: Sequence[str]) -> argparse.Namespace:
    return parser().parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from gymlab.cli.runs import load_algorithm

    agent, path = load_algorithm(args.run, args.checkpoint)
    with agent:
        print("\n".join(agent.eval_lines(str(path), args.episodes, args.seed)))
    return 0
