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

    nas = commands.add_parser(
        "nas", help="search for a good CNN on a dataset (the network-design environment)",
        description="Search gymlab/NAS-v0 for a good CNN: evolution, random, ppo or dqn.")
    nas.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue an interrupted search (trained candidates come from its cache)")
    nas.set_defaults(func=cmd_nas, nas_command=None)
    if argv[:1] == ["nas"]:
        from gymlab.core.config import add_arguments
        from gymlab.nas import NASConfig

        add_arguments(nas, NASConfig, "search options")
    nas_commands = nas.add_subparsers(dest="nas_command", metavar="COMMAND")
    table = nas_commands.add_parser(
        "build-table", help="train every architecture of a small space into a lookup table")
    table.add_argument("--out", required=True, metavar="FILE.npz", help="table file to write")
    table.add_argument("--seeds", type=_positive_int, default=2,
                       help="training seeds per architecture (default: 2)")
    table.set_defaults(nas_command="build-table")

    _add_meta_commands(commands, argv)

    plot = commands.add_parser("plot", help="draw learning curves of one or more runs")
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories to overlay")
    plot.add_argument("--out", required=True, metavar="FILE.png", help="image file to write")
    plot.set_defaults(func=cmd_plot)

    tune = commands.add_parser(
        "tune", help="search hyperparameters: many runs in parallel with Ray Tune",
        description="Search hyperparameters: grid values x samples trials, each a normal run "
        "with its own run directory, run in parallel on the local CPUs (or a Ray cluster). "
        "KEY is a config field name (see gymlab train ALGO --help, with _ for -). Results: "
        "tune_results.csv in the search's folder, best first. Needs: "
        "pip install -c constraints.txt -e '.[tune]'.")
    _add_tune_args(tune, argv)
    tune.set_defaults(func=cmd_tune)

    new_env = commands.add_parser(
        "new-env", help="write a pip-installable gymnasium environment package to start from",
        description="Write NAME/: a package of gymnasium environments (src layout, "
        "pyproject.toml, tests, README) registering NAME/<STAGE>-v0 for each stage. Each "
        "stage is a working toy (reach a target on a grid) with the chosen spaces, ready for "
        "pip install -e NAME, pytest NAME and gymlab train ppo --env NAME/<STAGE>-v0.")
    new_env.set_defaults(func=cmd_new_env)
    if argv[:1] == ["new-env"]:  # the generator's module is only imported when it is used
        from gymlab.scaffold import ACTIONS, OBSERVATIONS

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
    return parser


def _add_meta_commands(commands: Any, argv: Sequence[str]) -> None:
    meta = commands.add_parser(
        "meta", help="meta-RL: MAML-TRPO on task families (2D navigation, MuJoCo)",
        description="Meta-reinforcement learning on gymlab's task families.")
    meta_commands = meta.add_subparsers(dest="meta_command", metavar="COMMAND", required=True)
    maml = meta_commands.add_parser(
        "maml", help="meta-train a policy with MAML-TRPO (or resume a run)",
        description="MAML with a TRPO meta-update. Defaults are pytorch-maml-rl's published "
        "configs; the MuJoCo families use meta_batch_size 40 and action_scale 10. config.json "
        "records what a run used.")
    maml.add_argument("--resume", metavar="RUN_DIR", default=None,
                      help="continue the run in RUN_DIR from its checkpoints/last.pt (only "
                      "--num-batches, --progress and --num-workers may change)")
    maml.set_defaults(func=cmd_meta_maml)
    if argv[:2] == ["meta", "maml"]:
        from gymlab.agents.maml import MAMLConfig
        from gymlab.core.config import add_arguments

        add_arguments(maml, MAMLConfig, "MAML options")
        first_order = maml._option_string_actions["--first-order"]
        first_order.nargs, first_order.const = "?", True  # bare --first-order means true
    ev = meta_commands.add_parser(
        "eval", help="adaptation curve of a MAML run on new tasks, plotted",
        description="The MAML paper's protocol: new tasks, mean return with the meta-trained "
        "policy and after each policy-gradient step on its own episodes, with standard "
        "errors over tasks. Writes adaptation.png and adaptation.json.")
    ev.add_argument("run", metavar="RUN_DIR", help="a maml run directory (or a checkpoint file)")
    ev.add_argument("--tasks", type=_positive_int, default=40, help="new tasks (default: 40)")
    ev.add_argument("--grad-steps", type=int, default=3,
                    help="policy-gradient steps per task (default: 3)")
    ev.add_argument("--episodes", type=_positive_int, default=40,
                    help="episodes per task and step (default: 40)")
    ev.add_argument("--fast-lr", metavar="LR[,LR...]", default=None,
                    help="step size of the gradient steps: one for all, or one per step, "
                         "the last repeated (default: the run's fast_lr; the MAML authors' "
                         "test halved it after the first step: 0.5,0.25)")
    ev.add_argument("--checkpoint", choices=("best", "last"), default="best",
                    help="which checkpoint of the run (default: best)")
    ev.add_argument("--seed", type=int, default=None,
                    help="seed of the new tasks (default: the run's seed + 1000000)")
    ev.add_argument("--out", metavar="FILE.png", default=None,
                    help="plot to write (default: RUN_DIR/adaptation.png)")
    ev.set_defaults(func=cmd_meta_eval)


class _SpecAction(argparse.Action):
    """Collect --grid/--choice/--uniform/--loguniform/--randint in command-line order."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        specs = list(getattr(namespace, self.dest, None) or [])
        specs.append((self.metavar_kind, values))
        setattr(namespace, self.dest, specs)


def _add_tune_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    from gymlab.tune import METRICS

    def spec(kind: str, metavar: str, text: str) -> None:
        action = type(f"{kind}Action", (_SpecAction,), {"metavar_kind": kind})
        search.add_argument(f"--{kind}", dest="space", action=action, metavar=metavar,
                            default=[], help=text)

    parser.add_argument("algo", metavar="ALGO", choices=list(ALGORITHMS),
                        help="algorithm: " + ", ".join(ALGORITHMS))
    search = parser.add_argument_group("search space (each flag can be repeated)")
    spec("grid", "KEY=[a,b]", "try every value: --grid hidden_sizes='[[32],[64,64]]' "
         "--grid activation=[linear,relu]")
    spec("choice", "KEY=a,b", "one value drawn per trial: --choice batch_size=32,64,128")
    spec("uniform", "KEY=LO:HI", "a float drawn uniformly: --uniform gamma=0.9:0.999")
    spec("loguniform", "KEY=LO:HI", "a float drawn log-uniformly: "
         "--loguniform learning_rate=1e-5:1e-2")
    spec("randint", "KEY=LO:HI", "an integer from LO to HI, both included")
    search.add_argument("--samples", type=_positive_int, default=1, metavar="N",
                        help="trials per grid point (default: 1); sample k uses seed SEED+k")
    search.add_argument("--search", choices=("random", "optuna"), default="random",
                        help="random (grid x samples; default) or optuna (Ray Tune's Optuna "
                        "searcher: grid values become a choice, grid size x samples trials)")
    opts = parser.add_argument_group("search options")
    opts.add_argument("--metric", choices=METRICS, default="steps_to_solve",
                      help="steps_to_solve (default; a trial that never solves counts as its "
                      "max steps), wall_to_solve (seconds; unsolved: its wall time for max "
                      "steps), eval_return (best evaluation mean) or last_eval_return")
    opts.add_argument("--mode", choices=("min", "max"), default=None,
                      help="minimise or maximise the metric (default: min for *_to_solve, "
                      "max for returns)")
    opts.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo",
                      help="asha: stop trials early whose best evaluation return is in the "
                      "bottom 2/3 at 1/10 of the max steps, then every 3x (default: fifo)")
    opts.add_argument("--env", default="CartPole-v1", help="gymnasium environment id "
                      "(default: CartPole-v1)")
    opts.add_argument("--max-steps", dest="total_steps", type=_positive_int,
                      metavar="STEPS", default=argparse.SUPPRESS,
                      help="environment steps per trial "
                      "(default: the tuned table's total_steps, else 100000)")
    opts.add_argument("--stop-reward", dest="stop_reward", type=float, metavar="R",
                      default=argparse.SUPPRESS, help="a trial is solved (and stops) when an "
                      "evaluation's mean return reaches this (default: the tuned table's)")
    opts.add_argument("--seed", type=int, default=0, help="seed of the first sample's trials "
                      "and of the search's random draws (default: 0)")
    opts.add_argument("--logdir", default="runs", help="folder in which the search's folder "
                      "tune-ALGO-ENV-STAMP is made (default: runs)")
    opts.add_argument("--cpus-per-trial", type=_positive_int, default=1, metavar="N",
                      help="CPUs (and torch threads) per trial (default: 1)")
    opts.add_argument("--ray-address", default=None, metavar="ADDRESS",
                      help="HOST:PORT of a running Ray cluster (default: start Ray locally "
                      "with every CPU)")
    opts.add_argument("--quiet", action="store_true",
                      help="no live table of trials, only the final summary")
    if len(argv) > 1 and argv[0] == "tune" and argv[1] in ALGORITHMS:
        import dataclasses

        from gymlab.agents import algorithm
        from gymlab.core.config import add_arguments
        from gymlab.core.run import RunConfig

        set_above = {"env", "seed", "total_steps", "stop_reward", "logdir", "progress",
                     "torch_threads"}
        add_arguments(parser, RunConfig, "fixed run options (every trial)",
                      only=[f.name for f in dataclasses.fields(RunConfig)
                            if f.name not in set_above])
        add_arguments(parser, algorithm(argv[1]).Config,
                      f"fixed {argv[1]} hyperparameters (every trial; default: tuned table's)")


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
RESUMABLE_OVERRIDES = {"total_steps", "progress", "stop_reward", "generations", "workers",
                       "ray_address"}
"""What a resumed run may change: how long it goes on, how it reports and where it computes,
not how it learns (generations, workers and ray_address exist for ga and es only)."""


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


def _checkpoint_file(run_or_file: str, which: str, algo: str | None = None) -> Any:
    """The checkpoint a command acts on: the file itself, or a run directory's best.pt (else
    last.pt, with a note) or last.pt; `algo`: the run must be of that algorithm."""
    from pathlib import Path

    from gymlab.core.errors import CheckpointError
    from gymlab.core.run import RunDir

    path = Path(run_or_file)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if not path.is_dir():
        return path
    run = RunDir.open(path)
    if algo is not None and run.config().get("algo") != algo:
        raise UserError(f"{path} is a {run.config().get('algo')} run, not a {algo} run")
    file = run.checkpoint(which)
    if not file.exists() and which == "best" and run.checkpoint("last").exists():
        print(f"note: {path} has no best.pt yet; using last.pt", file=sys.stderr)
        file = run.checkpoint("last")
    if not file.exists():
        raise CheckpointError(f"{path} has no checkpoint ({file} is missing)")
    return file


def _load_agent(args: argparse.Namespace) -> Any:
    from gymlab.agents import algorithm
    from gymlab.core.errors import CheckpointError
    from gymlab.core.run import load_checkpoint

    path = _checkpoint_file(args.run, args.checkpoint)
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
    env_kwargs = agent.run_config.env_kwargs
    check_recordable(agent.run_config.env, env_kwargs)
    seed = agent.run_config.seed + 2_000_000 if args.seed is None else args.seed
    frames = record_video(agent.act, agent.run_config.env, args.out, args.episodes, seed,
                          env_kwargs)
    print(f"wrote {args.out}: {frames} frames, {args.episodes} episode(s) of {path}")
    return 0


def cmd_nas(args: argparse.Namespace) -> int:
    import dataclasses

    from gymlab import nas

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(nas.NASConfig)
               if hasattr(args, f.name)}
    if args.resume is not None:
        if options:
            raise UserError(f"a resumed search keeps its config; cannot change "
                            f"{', '.join(sorted(options))}")
        result = nas.resume(args.resume)
    elif args.nas_command == "build-table":
        return _build_table(nas.NASConfig(**options), args.out, args.seeds)
    else:
        result = nas.search(nas.NASConfig(**options))
    nas.print_leaderboard(result)
    return 130 if result.outcome == "interrupted" else 0


def _build_table(config: Any, out: str, seeds: int) -> int:
    import torch

    from gymlab.envs.nas.datasets import load_dataset
    from gymlab.envs.nas.search_space import load_space
    from gymlab.envs.nas.table import build_table
    from gymlab.envs.nas.trainer import TrainSettings
    from gymlab.envs.nas.workers import usable_workers

    torch.set_num_threads(1)
    space = load_space(config.space)
    data = load_dataset(config.dataset, config.data_dir, config.subset)
    settings = TrainSettings(epochs=config.epochs, optimizer=config.optimizer, seed=config.seed)
    count = len(space) ** config.layers
    print(f"training {count} architectures x {seeds} seeds", file=sys.stderr)
    path = build_table(out, space, data, config.layers, settings, seeds,
                       usable_workers(config.workers))
    print(f"wrote {path}")
    return 0


def cmd_meta_maml(args: argparse.Namespace) -> int:
    import dataclasses

    from gymlab.agents.maml import MAML, MAMLConfig

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(MAMLConfig)
               if hasattr(args, f.name)}
    agent = MAML.resume(args.resume, **options) if args.resume else MAML(**options)
    with agent:
        agent.learn()
    return agent.exit_code


def cmd_meta_eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from gymlab.agents.maml import MAML

    if args.grad_steps < 0:
        raise UserError(f"--grad-steps must be >= 0, got {args.grad_steps}")
    fast_lr = None
    if args.fast_lr is not None:
        try:
            fast_lr = [float(x) for x in args.fast_lr.split(",")]
        except ValueError:
            raise UserError(f"--fast-lr takes numbers separated by commas, got "
                            f"{args.fast_lr!r}") from None
    path = _checkpoint_file(args.run, args.checkpoint, algo="maml")
    folder = Path(args.run) if Path(args.run).is_dir() else path.parent.parent
    with MAML.load(path, progress=False) as agent:
        curve = agent.adaptation_curve(args.tasks, args.grad_steps, args.episodes, args.seed,
                                       fast_lr)
    out = Path(args.out) if args.out else folder / "adaptation.png"
    curve.plot(out, f"MAML on {agent.config.env}: {args.tasks} new tasks, "
               f"{args.episodes} episodes per step")
    (out.with_suffix(".json")).write_text(json.dumps(curve.to_dict(), indent=2) + "\n")
    print(f"{agent.config.env} {path} ({agent.batch} meta-batches), {args.tasks} new tasks:")
    print("\n".join(curve.table()))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gymlab.core.plot import plot_runs

    out = plot_runs(args.runs, args.out)
    print(f"wrote {out}")
    return 0


_TUNE_ARGS = {"command", "func", "algo", "space", "samples", "search", "metric", "mode",
              "scheduler", "env", "seed", "logdir", "cpus_per_trial", "ray_address", "quiet"}


def cmd_tune(args: argparse.Namespace) -> int:
    from gymlab import tune

    space: dict[str, Any] = {}
    for kind, text in args.space:
        key, spec = tune.parse_spec(kind, text)
        if key in space:
            raise UserError(f"{key} is searched twice")
        space[key] = spec
    overrides = {k: v for k, v in vars(args).items() if k not in _TUNE_ARGS}
    results = tune.run(args.algo, args.env, space, metric=args.metric, mode=args.mode,
                       samples=args.samples, scheduler=args.scheduler, search=args.search,
                       seed=args.seed, cpus_per_trial=args.cpus_per_trial, logdir=args.logdir,
                       ray_address=args.ray_address, progress=not args.quiet, **overrides)
    print("\n".join(results.summary()))
    if results.interrupted:
        return 128 + results.interrupted
    return 0 if results.best is not None else 1


def cmd_new_env(args: argparse.Namespace) -> int:
    from gymlab.scaffold import DEFAULT_STAGES, new_env

    stages = args.stages or list(DEFAULT_STAGES)
    path = new_env(args.name, stages, args.dir, obs=args.obs, action=args.action)
    ids = [f"{args.name}/{stage}-v0" for stage in stages]
    print(f"wrote {path}/: {', '.join(ids)} (obs {args.obs}, action {args.action})\n"
          f"next:\n  pip install -e {path}\n  pytest {path}\n"
          f"  gymlab train ppo --env {ids[0]} --total-steps 100000")
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
