"""The `gymlab` command. Thin: it parses, calls the library, and maps outcomes to exit codes.

Heavy imports (torch, gymnasium, matplotlib) happen inside the commands, so `gymlab --help`
answers at once. The flags of `train <algo>` are derived from that algorithm's config
dataclasses, whose module is imported only when that algorithm is named.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from gymlab.agents import ALGORITHMS
from gymlab.core.errors import UserError

EXIT_USER_ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `gymlab: error: ...` and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"gymlab: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def build_parser(argv: Sequence[str]) -> Parser:
    parser = Parser(prog="gymlab", description="gymlab: a reinforcement-learning lab.")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train an agent (or resume a run)",
                                description="Train an agent, or resume a run with --resume.")
    train.add_argument("--resume", metavar="RUN_DIR", default=None,
                       help="continue the run in RUN_DIR from its checkpoints/last.pt")
    train.set_defaults(func=cmd_train, algo=None)
    if argv[:1] == ["train"]:
        _add_resume_flags(train)
    algos = train.add_subparsers(dest="algo", metavar="ALGO")
    chosen = argv[1] if len(argv) > 1 and argv[0] == "train" else None
    for name, (_, summary) in ALGORITHMS.items():
        sub = algos.add_parser(
            name, help=summary,
            description=f"{summary}. The defaults shown are the config's; for environments "
            "in the tuned table (gymlab/hyperparams.py) its values come first. config.json "
            "records what a run used.")
        sub.add_argument("--resume", metavar="RUN_DIR", default=argparse.SUPPRESS,
                         help="continue the run in RUN_DIR from its checkpoints/last.pt")
        if name == chosen:
            _add_config_flags(sub, name)

    ev = commands.add_parser("eval", help="evaluate a trained agent: mean ± std return")
    _add_checkpoint_args(ev)
    ev.add_argument("--episodes", type=_positive_int, default=10, help="episodes (default: 10)")
    ev.set_defaults(func=cmd_eval)

    rec = commands.add_parser("record", help="write an MP4 of a trained agent acting")
    _add_checkpoint_args(rec)
    rec.add_argument("--out", required=True, metavar="FILE.mp4", help="video file to write")
    rec.add_argument("--episodes", type=_positive_int, default=1, help="episodes (default: 1)")
    rec.set_defaults(func=cmd_record)

    plot = commands.add_parser("plot", help="draw learning curves of one or more runs")
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories to overlay")
    plot.add_argument("--out", required=True, metavar="FILE.png", help="image file to write")
    plot.set_defaults(func=cmd_plot)
    return parser


def _add_config_flags(parser: argparse.ArgumentParser, algo: str) -> None:
    from gymlab.agents import algorithm
    from gymlab.core.config import add_arguments
    from gymlab.core.run import RunConfig

    add_arguments(parser, RunConfig, "run options")
    add_arguments(parser, algorithm(algo).Config, f"{algo} hyperparameters")


def _add_resume_flags(parser: argparse.ArgumentParser) -> None:
    from gymlab.core.config import add_arguments
    from gymlab.core.run import RunConfig

    # all run options, so that changing one a resumed run must keep gets a clear refusal
    allowed = ", ".join(sorted(RESUMABLE_OVERRIDES))
    add_arguments(parser, RunConfig, f"with --resume (only {allowed})")


def _add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="a run directory (or a checkpoint file)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which checkpoint of the run (default: best)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the first episode (default: the run's seed + 2000000)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _version() -> str:
    from gymlab import __version__

    return f"gymlab {__version__}"


# -- commands ----------------------------------------------------------------------------------
RESUMABLE_OVERRIDES = {"total_steps", "progress", "stop_reward"}
"""What a resumed run may change: how long it goes on and how it reports, not how it learns."""


def cmd_train(args: argparse.Namespace) -> int:
    from gymlab.agents import algorithm

    overrides = {k: v for k, v in vars(args).items()
                 if k not in ("command", "func", "algo", "resume")}
    if args.resume is not None:
        from gymlab.core.run import RunDir

        algo = RunDir.open(args.resume).config().get("algo")
        if algo not in ALGORITHMS:
            raise UserError(f"{args.resume} holds a run of an unknown algorithm {algo!r}")
        if args.algo is not None and args.algo != algo:
            raise UserError(f"{args.resume} is a {algo} run, not {args.algo}")
        fixed = sorted(set(overrides) - RESUMABLE_OVERRIDES)
        if fixed:
            raise UserError(f"a resumed run keeps its config; cannot change {', '.join(fixed)}")
        agent = algorithm(algo).resume(args.resume, **overrides)
    elif args.algo is None:
        raise UserError("train needs an algorithm (one of: " + ", ".join(ALGORITHMS)
                         + ") or --resume RUN_DIR")
    else:
        env = overrides.pop("env", "CartPole-v1")
        agent = algorithm(args.algo)(env, **overrides)
    agent.learn()
    return agent.exit_code


def _load_agent(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from gymlab.agents import algorithm
    from gymlab.core.errors import CheckpointError
    from gymlab.core.run import RunDir, load_checkpoint

    path = Path(args.run)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if path.is_dir():
        run = RunDir.open(path)
        file = run.checkpoint(args.checkpoint)
        if not file.exists() and args.checkpoint == "best" and run.checkpoint("last").exists():
            print(f"note: {path} has no best.pt yet; using last.pt", file=sys.stderr)
            file = run.checkpoint("last")
        if not file.exists():
            raise CheckpointError(f"{path} has no checkpoint ({file} is missing)")
        path = file
    algo = load_checkpoint(path)["algo"]
    if algo not in ALGORITHMS:
        raise CheckpointError(f"{path} is a checkpoint of an unknown algorithm {algo!r}")
    return algorithm(algo).load(path, progress=False), path


def cmd_eval(args: argparse.Namespace) -> int:
    agent, path = _load_agent(args)
    result = agent.evaluate(args.episodes, seed=args.seed)
    print(f"{agent.run_config.env} {path}: {result.mean:.2f} ± {result.std:.2f} "
          f"over {args.episodes} episodes")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from gymlab.core.video import check_recordable, record_video

    agent, path = _load_agent(args)
    check_recordable(agent.run_config.env)
    seed = agent.run_config.seed + 2_000_000 if args.seed is None else args.seed
    frames = record_video(agent.act, agent.run_config.env, args.out, args.episodes, seed)
    print(f"wrote {args.out}: {frames} frames, {args.episodes} episode(s) of {path}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gymlab.core.plot import plot_runs

    out = plot_runs(args.runs, args.out)
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"gymlab: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # disk full, permissions: not a bug of ours, so no traceback
        print(f"gymlab: error: {exc}", file=sys.stderr)
        return 1
