"""`gymlab new-env NAME`: write a pip-installable package of gymnasium environments."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gymlab.cli.parser import Parser

HELP = "write a pip-installable gymnasium environment package to start from"


def parser() -> Parser:
    from gymlab.scaffold import ACTIONS, OBSERVATIONS  # the standard library only

    new_env = Parser(
        prog="gymlab new-env",
        description="Write NAME/: a package of gymnasium environments (src layout, "
        "pyproject.toml, tests, README) registering NAME/<STAGE>-v0 for each stage. Each "
        "stage is a working toy (reach a target on a grid) with the chosen spaces, ready for "
        "pip install -e NAME, pytest NAME and gymlab train ppo --env NAME/<STAGE>-v0.")
    new_env.add_argument("name", metavar="NAME",
                         help="package name, a Python identifier such as my_envs")
    new_env.add_argument("--stage", dest="stages", action="append", metavar="STAGE",
                         help="a CamelCase stage name, one module and one id each; repeat "
                         "for several (default: Reach)")
    new_env.add_argument("--dir", default=".", metavar="PATH",
                         help="folder to write NAME/ into (default: the current folder)")
    new_env.add_argument("--obs", choices=list(OBSERVATIONS), default="box",
                         help="observation space (default: box)")
    new_env.add_argument("--action", choices=list(ACTIONS), default="discrete",
                         help="action space (default: discrete)")
    return new_env


def parse(argv: Sequence[str]) -> argparse.Namespace:
    return parser().parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from gymlab.scaffold import DEFAULT_STAGES, new_env

    stages = args.stages or list(DEFAULT_STAGES)
    path = new_env(args.name, stages, args.dir, obs=args.obs, action=args.action)
    ids = [f"{args.name}/{stage}-v0" for stage in stages]
    print(f"wrote {path}/: {', '.join(ids)} (obs {args.obs}, action {args.action})\n"
          f"next:\n  pip install -e {path}\n  pytest {path}\n"
          f"  gymlab train ppo --env {ids[0]} --total-steps 100000")
    return 0
