"""`gymlab record RUN_DIR --out FILE.mp4`: a video of a trained policy acting."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gymlab.cli.parser import Parser, add_checkpoint_args, positive_int

HELP = "write an MP4 of a trained agent acting"


def parser() -> Parser:
    rec = Parser(prog="gymlab record", description="Write an MP4 of a trained policy acting "
                 "in its environment (which must render rgb_array frames).")
    add_checkpoint_args(rec)
    rec.add_argument("--out", required=True, metavar="FILE.mp4", help="video file to write")
    rec.add_argument("--episodes", type=positive_int, default=1, help="episodes (default: 1)")
    rec.add_argument("--seed", type=int, default=None,
                     help="seed of the first episode (default: the run's seed + 2000000)")
    return rec


def parse(argv: Sequence[str]) -> argparse.Namespace:
    return parser().parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from gymlab.cli.runs import load_algorithm

    agent, path = load_algorithm(args.run, args.checkpoint)
    with agent:
        frames = agent.record(args.out, args.episodes, args.seed)
    print(f"wrote {args.out}: {frames} frames, {args.episodes} episode(s) of {path}")
    return 0
