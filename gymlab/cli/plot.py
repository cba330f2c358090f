"""`gymlab plot RUN_DIR... --out FILE.png`: learning curves of runs, overlaid."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gymlab.cli.parser import Parser

HELP = "draw learning curves of one or more runs"


def parser() -> Parser:
    plot = Parser(prog="gymlab plot", description="Draw the learning curves of one or more "
                  "runs (evaluation return against steps in each run's unit) into one image.")
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories to overlay")
    plot.add_argument("--out", required=True, metavar="FILE.png", help="image file to write")
    return plot


def parse(argv: Sequence[str]) -> argparse.Namespace:
    return parser().parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from gymlab.core.plot import plot_runs

    print(f"wrote {plot_runs(args.runs, args.out)}")
    return 0
