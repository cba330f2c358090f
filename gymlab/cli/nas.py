"""`gymlab nas [flags]`: a network search (`gymlab train nas`, with its leaderboard printed);
`gymlab nas --resume RUN_DIR`; `gymlab nas [flags] build-table --out FILE.npz`: an
architecture lookup table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gymlab.cli.parser import Parser, config_values, listing, positive_int, second_stage
from gymlab.core.errors import UserError

HELP = "search for a good CNN on a dataset (the network-design environment)"

COMMANDS = {"build-table": "train every architecture of a small space into a lookup table"}


def parser() -> Parser:
    from gymlab.cli.train import algorithm_parser

    nas = algorithm_parser("nas", prog="gymlab nas", epilog=listing("commands", COMMANDS),
                           usage="%(prog)s [flags]\n       %(prog)s --resume RUN_DIR [flags]\n"
                           "       %(prog)s [flags] build-table --out FILE.npz")
    nas.add_rest("build-table ...", "build a lookup table instead of searching "
                 "(gymlab nas build-table --help)")
    return nas


def build_table_parser(name: str) -> Parser:
    table = Parser(prog=f"gymlab nas {name}", description=COMMANDS[name] + ", with the data, "
                   "space, layers, epochs, optimizer, seed and workers of the nas flags "
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
    from gymlab.cli.train import learn
    from gymlab.nas.report import leaderboard_lines

    if args.nas_command == "build-table":
        if args.resume is not None:
            raise UserError("build-table builds a new table; it takes no --resume")
        return build_table(args)
    search = learn("nas", args)
    print("\n".join(leaderboard_lines(search.result)))
    return search.exit_code


def build_table(args: argparse.Namespace) -> int:
    from gymlab.core.algorithm import resolve_configs
    from gymlab.nas.datasets import load_dataset
    from gymlab.nas.evaluator import resolve_device
    from gymlab.nas.search_space import load_space
    from gymlab.nas.table import build_table as build
    from gymlab.nas.trainer import TrainSettings
    from gymlab.nas.workers import usable_workers
    from gymlab.registry import algorithm

    cls = algorithm("nas")
    overrides = config_values(args, cls)
    run_config, config = resolve_configs(cls, overrides.pop("env", cls.default_env), overrides)
    import torch

    torch.set_num_threads(1)
    space = load_space(config.space)
    data = load_dataset(config.dataset, config.data_dir, config.subset)
    settings = TrainSettings(epochs=config.epochs, optimizer=config.optimizer,
                             seed=run_config.seed)
    device = resolve_device(config.device)
    print(f"training {len(space) ** config.layers} architectures x {args.seeds} seeds",
          file=sys.stderr)
    path = build(args.out, space, data, config.layers, settings, args.seeds,
                 usable_workers(config.workers), device)
    print(f"wrote {path}")
    return 0
