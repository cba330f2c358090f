"""`gymlab tune ALGO [search space] [options] [fixed flags]`: hyperparameter search with Ray
Tune, each trial a normal run of ALGO."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from gymlab.cli.parser import (
    Parser,
    algorithm_summaries,
    listing,
    positive_int,
    second_stage,
)
from gymlab.core.errors import UserError

HELP = "search hyperparameters: many runs in parallel with Ray Tune"

SET_BY_TUNE = {"env", "seed", "total_steps", "stop_reward", "logdir", "progress", "torch_threads"}
"""RunConfig fields the search sets for every trial (from its own options), so no fixed flag."""

SEARCH_ARGS = {"space", "samples", "search", "metric", "mode", "scheduler", "env", "seed",
               "logdir", "cpus_per_trial", "ray_address", "quiet"}
"""Namespace entries that configure the search rather than the trials."""


class _SpecAction(argparse.Action):
    """Collect --grid/--choice/--uniform/--loguniform/--randint in command-line order."""

    kind = ""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        specs = list(getattr(namespace, self.dest, None) or [])
        specs.append((self.kind, values))
        setattr(namespace, self.dest, specs)


def parser(algo: str | None = None) -> Parser:
    """The search's flags; with `algo`, also its fixed run options and hyperparameters, and
    --metric's choices (the algorithm's score name among them). Without, ALGO and the rest."""
    prog = "gymlab tune" if algo is None else f"gymlab tune {algo}"
    tune = Parser(
        prog=prog, usage=f"{prog}{' ALGO' if algo is None else ''} [search space] [options] "
        "[fixed flags]",
        epilog=listing("algorithms", algorithm_summaries()) if algo is None else None,
        description="Search hyperparameters: grid values x samples trials, each a normal run "
        "with its own run directory, run in parallel on the local CPUs (or a Ray cluster). "
        "KEY is a config field name (see gymlab train ALGO --help, with _ for -). Results: "
        "tune_results.csv in the search's folder, best first. Needs: "
        "pip install -c constraints.txt -e '.[tune]'.")
    add_search_options(tune, algo)
    if algo is None:
        tune.add_rest("ALGO ...", "the algorithm, then the options above and its fixed flags "
                      "(gymlab tune ALGO --help)")
    else:
        add_fixed_flags(tune, algo)
    return tune


def add_search_options(tune: Parser, algo: str | None) -> None:
    def spec(kind: str, metavar: str, text: str) -> None:
        action = type(f"{kind}Action", (_SpecAction,), {"kind": kind})
        search.add_argument(f"--{kind}", dest="space", action=action, metavar=metavar,
                            default=[], help=text)

    search = tune.add_argument_group("search space (each flag can be repeated)")
    spec("grid", "KEY=[a,b]", "try every value: --grid hidden_sizes='[[32],[64,64]]' "
         "--grid activation=[linear,relu]")
    spec("choice", "KEY=a,b", "one value drawn per trial: --choice batch_size=32,64,128")
    spec("uniform", "KEY=LO:HI", "a float drawn uniformly: --uniform gamma=0.9:0.999")
    spec("loguniform", "KEY=LO:HI", "a float drawn log-uniformly: "
         "--loguniform learning_rate=1e-5:1e-2")
    spec("randint", "KEY=LO:HI", "an integer from LO to HI, both included")
    search.add_argument("--samples", type=positive_int, default=1, metavar="N",
                        help="trials per grid point (default: 1); sample k uses seed SEED+k")
    search.add_argument("--search", choices=("random", "optuna"), default="random",
                        help="random (grid x samples; default) or optuna (Ray Tune's Optuna "
                        "searcher: grid values become a choice, grid size x samples trials)")
    opts = tune.add_argument_group("search options")
    opts.add_argument("--metric", choices=metrics(algo), default=None,
                      help="steps_to_solve (the default where a stop reward is set; a trial "
                      "that never solves counts as its max steps), wall_to_solve (seconds; "
                      "unsolved: its wall time for max steps), eval_return (best evaluation mean), "
                      "last_eval_return, or the name of the algorithm's score (best_valid_acc "
                      "for nas; the default where no stop reward is set)")
    opts.add_argument("--mode", choices=("min", "max"), default=None,
                      help="minimise or maximise the metric (default: min for *_to_solve, "
                      "max for the others)")
    opts.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo",
                      help="asha: stop trials early whose best evaluation return is in the "
                      "bottom 2/3 at 1/10 of the max steps, then every 3x (default: fifo)")
    opts.add_argument("--env", default=None, help="gymnasium environment id (default: the "
                      "algorithm's, CartPole-v1 for the RL agents)")
    opts.add_argument("--max-steps", dest="total_steps", type=positive_int,
                      metavar="STEPS", default=argparse.SUPPRESS,
                      help="budget per trial in the algorithm's unit (default: the tuned "
                      "table's total_steps, else the algorithm's)")
    opts.add_argument("--stop-reward", dest="stop_reward", type=float, metavar="R",
                      default=argparse.SUPPRESS, help="a trial is solved (and stops) when an "
                      "evaluation's mean return reaches this (default: the tuned table's)")
    opts.add_argument("--seed", type=int, default=0, help="seed of the first sample's trials "
                      "and of the search's random draws (default: 0)")
    opts.add_argument("--logdir", default="runs", help="folder in which the search's folder "
                      "tune-ALGO-ENV-STAMP is made (default: runs)")
    opts.add_argument("--cpus-per-trial", type=positive_int, default=1, metavar="N",
                      help="CPUs (and torch threads) per trial (default: 1)")
    opts.add_argument("--ray-address", default=None, metavar="ADDRESS",
                      help="HOST:PORT of a running Ray cluster (default: start Ray locally "
                      "with every CPU)")
    opts.add_argument("--quiet", action="store_true",
                      help="no live table of trials, only the final summary")


def metrics(algo: str | None) -> Sequence[str] | None:
    """--metric's choices: checked once the algorithm is known (its score name is one)."""
    if algo is None:
        return None
    from gymlab.registry import algorithm
    from gymlab.tune.validate import metrics_of

    return metrics_of(algorithm(algo))


def add_fixed_flags(tune: Parser, algo: str) -> None:
    from gymlab.core.config import add_arguments
    from gymlab.core.run import RunConfig
    from gymlab.registry import algorithm

    cls = algorithm(algo)
    own = {f.name for f in dataclasses.fields(cls.Config)}
    taken = SET_BY_TUNE | SEARCH_ARGS  # an option of the search (es's ray_address) is its own
    add_arguments(tune, RunConfig, "fixed run options (every trial)",
                  only=[f.name for f in dataclasses.fields(RunConfig)
                        if f.name not in taken | own])
    add_arguments(tune, cls.Config,
                  f"fixed {algo} hyperparameters (every trial; default: tuned table's)",
                  only=[name for name in own if name not in taken])


def parse(argv: Sequence[str]) -> argparse.Namespace:
    first = parser()
    args = first.parse_args(argv)
    args.algo = second_stage(first, args, list(algorithm_summaries()), "ALGO", parser)
    if args.algo is None:
        first.error("tune needs an algorithm: " + ", ".join(algorithm_summaries()))
    return args


def run(args: argparse.Namespace) -> int:
    from gymlab import tune

    space: dict[str, Any] = {}
    for kind, text in args.space:
        key, spec = tune.parse_spec(kind, text)
        if key in space:
            raise UserError(f"{key} is searched twice")
        space[key] = spec
    fixed = {k: v for k, v in vars(args).items() if k not in SEARCH_ARGS | {"algo"}}
    results = tune.run(args.algo, args.env, space, metric=args.metric, mode=args.mode,
                       samples=args.samples, scheduler=args.scheduler, search=args.search,
                       seed=args.seed, cpus_per_trial=args.cpus_per_trial, logdir=args.logdir,
                       ray_address=args.ray_address, progress=not args.quiet, **fixed)
    print("\n".join(results.summary()))
    if results.interrupted:
        return 128 + results.interrupted
    return 0 if results.best is not None else 1
