"""`gymlab meta maml [flags]`: meta-train with MAML-TRPO (or resume);
`gymlab meta eval RUN_DIR`: the adaptation curve of a MAML run on new tasks, plotted."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from gymlab.cli.parser import Parser, listing, positive_int, second_stage
from gymlab.core.errors import UserError

HELP = "meta-RL: MAML-TRPO on task families (2D navigation, MuJoCo)"

COMMANDS = {"maml": "meta-train a policy with MAML-TRPO (or resume a run)",
            "eval": "adaptation curve of a MAML run on new tasks, plotted"}


def parser() -> Parser:
    meta = Parser(prog="gymlab meta", usage="%(prog)s COMMAND ...",
                  epilog=listing("commands", COMMANDS),
                  description="Meta-reinforcement learning on gymlab's task families.")
    meta.add_rest("COMMAND ...", "maml or eval, then its arguments (gymlab meta COMMAND --help)")
    return meta


def maml_parser() -> Parser:
    """`gymlab train maml`'s flags under this name."""
    from gymlab.cli.train import algorithm_parser

    return algorithm_parser("maml", prog="gymlab meta maml")


def eval_parser() -> Parser:
    ev = Parser(prog="gymlab meta eval", description="The MAML paper's protocol: new tasks, "
                "mean return with the meta-trained policy and after each policy-gradient step "
                "on its own episodes, with standard errors over tasks. Writes adaptation.png "
                "and adaptation.json.")
    ev.add_argument("run", metavar="RUN_DIR", help="a maml run directory (or a checkpoint file)")
    ev.add_argument("--tasks", type=positive_int, default=40, help="new tasks (default: 40)")
    ev.add_argument("--grad-steps", type=int, default=3,
                    help="policy-gradient steps per task (default: 3)")
    ev.add_argument("--episodes", type=positive_int, default=40,
                    help="episodes per task and step (default: 40)")
    ev.add_argument("--fast-lr", metavar="LR[,LR...]", default=None,
                    help="step size of the gradient steps: one for all, or one per step, "
                         "the last repeated (default: the run's fast_lr for the steps it was "
                         "trained with, then a fraction of it (see --later-step-tasks), "
                         "halved at each further step)")
    ev.add_argument("--later-step-tasks", type=int, default=None, metavar="N",
                    help="choose the step after the trained ones on N validation tasks; 0: "
                         "the run's later_step_fraction (default: the run's later_step_tasks)")
    ev.add_argument("--checkpoint", choices=("best", "last"), default="best",
                    help="which checkpoint of the run (default: best)")
    ev.add_argument("--seed", type=int, default=None,
                    help="seed of the new tasks (default: the run's seed + 1000000)")
    ev.add_argument("--out", metavar="FILE.png", default=None,
                    help="plot to write (default: RUN_DIR/adaptation.png)")
    return ev


PARSERS = {"maml": maml_parser, "eval": eval_parser}


def parse(argv: Sequence[str]) -> argparse.Namespace:
    first = parser()
    args = first.parse_args(argv)
    args.meta_command = second_stage(first, args, list(COMMANDS), "COMMAND",
                                     lambda name: PARSERS[name]())
    if args.meta_command is None:
        first.error(f"meta needs a command: {', '.join(COMMANDS)}")
    return args


def run(args: argparse.Namespace) -> int:
    return meta_eval(args) if args.meta_command == "eval" else meta_maml(args)


def meta_maml(args: argparse.Namespace) -> int:
    from gymlab.cli.train import learn

    return learn("maml", args).exit_code


def meta_eval(args: argparse.Namespace) -> int:
    from gymlab.agents.maml.trainer import step_sizes
    from gymlab.cli.runs import checkpoint_file
    from gymlab.registry import algorithm

    if args.grad_steps < 0:
        raise UserError(f"--grad-steps must be >= 0, got {args.grad_steps}")
    if args.later_step_tasks is not None and args.later_step_tasks < 0:
        raise UserError(f"--later-step-tasks must be >= 0, got {args.later_step_tasks}")
    testing = {} if args.later_step_tasks is None else {"later_step_tasks": args.later_step_tasks}
    fast_lr = None
    if args.fast_lr is not None:
        try:
            fast_lr = [float(x) for x in args.fast_lr.split(",")]
        except ValueError:
            raise UserError(f"--fast-lr takes numbers separated by commas, got "
                            f"{args.fast_lr!r}") from None
    path = checkpoint_file(args.run, args.checkpoint, algo="maml")
    folder = Path(args.run) if Path(args.run).is_dir() else path.parent.parent
    with algorithm("maml").load(path, progress=False, **testing) as agent:
        lrs = step_sizes(agent.default_test_lr(args.grad_steps) if fast_lr is None else fast_lr,
                         args.grad_steps)[:args.grad_steps]
        curve = agent.adaptation_curve(args.tasks, args.grad_steps, args.episodes, args.seed,
                                       lrs or None)
    out = Path(args.out) if args.out else folder / "adaptation.png"
    env = agent.run_config.env
    curve.plot(out, f"MAML on {env}: {args.tasks} new tasks, "
               f"{args.episodes} episodes per step")
    out.with_suffix(".json").write_text(
        json.dumps({**curve.to_dict(), "step_sizes": lrs}, indent=2) + "\n")
    sizes = ", ".join(f"{lr:g}" for lr in lrs) or "none"
    print(f"{env} {path} ({agent.step} meta-batches), {args.tasks} new tasks, step sizes "
          f"{sizes}:")
    print("\n".join(curve.table()))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0
