"""`gymlab nas [flags]`: a network search; `gymlab nas --resume RUN_DIR`;
`gymlab nas [flags] build-table --out FILE.npz`: an architecture lookup table."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from gymlab.cli.parser import Parser, listing, positive_int, second_stage
from gymlab.core.errors import UserError

HELP = "search for a good CNN on a dataset (the network-design environment)"

COMMANDS = {"build-table": "train every architecture of a small space into a lookup table"}


def parser() -> Parser:
    from gymlab.core.config import add_arguments
    from gymlab.nas import NASConfig

    nas = Parser(prog="gymlab nas", usage="%(prog)s [flags]\n       %(prog)s --resume "
                 "RUN_DIR\n       %(prog)s [flags] build-table --out FILE.npz",
                 epilog=listing("commands", COMMANDS),
                 description="Search gymlab/NAS-v0 for a good CNN: evolution, random, ppo or dqn.")
    nas.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue an interrupted search (trained candidates come from its cache)")
    add_arguments(nas, NASConfig, "search options")
    nas.add_rest("build-table ...", "build a lookup table instead of searching "
                 "(gymlab nas build-table --help)")
    return nas


def build_table_parser(name: str) -> Parser:
    table = Parser(prog=f"gymlab nas {name}", description=COMMANDS[name] + ", with the data, "
                   "space, layers, epochs, optimizer, seed and workers of the search options "
                   "(given before build-table).")
    table.add_argument("--out", required=True, metavar="FILE.npz", help="table file to write")
    table.add_argument("--seeds", type=positive_int, default=2,
                       help="training seeds per architecture (default: 2)")
    return table


def parse(argv: Sequence[str]) -> argparse.Namespace:
    first = parser()
    args = first.parse_args(argv)
    args.nas_command = second_stage(first, args, list(COMMANDS), "COMMAND", build_table_parser)
    return args


def run(args: argparse.Namespace) -> int:
    from gymlab import nas

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(nas.NASConfig)
               if hasattr(args, f.name)}
    if args.resume is not None:
        if options:
            raise UserError(f"a resumed search keeps its config; cannot change "
                            f"{', '.join(sorted(options))}")
        result = nas.resume(args.resume)
    elif args.nas_command == "build-table":
        return build_table(nas.NASConfig(**options), args.out, args.seeds)
    else:
        result = nas.search(nas.NASConfig(**options))
    nas.print_leaderboard(result)
    return 130 if result.outcome == "interrupted" else 0


def build_table(config: Any, out: str, seeds: int) -> int:
    import torch

    from gymlab.nas.datasets import load_dataset
    from gymlab.nas.search_space import load_space
    from gymlab.nas.table import build_table as build
    from gymlab.nas.trainer import TrainSettings
    from gymlab.nas.workers import usable_workers

    torch.set_num_threads(1)
    space = load_space(config.space)
    data = load_dataset(config.dataset, config.data_dir, config.subset)
    settings = TrainSettings(epochs=config.epochs, optimizer=config.optimizer, seed=config.seed)
    print(f"training {len(space) ** config.layers} architectures x {seeds} seeds",
          file=sys.stderr)
    path = build(out, space, data, config.layers, settings, seeds,
                 usable_workers(config.workers))
    print(f"wrote {path}")
    return 0
