"""Train gymlab's DQN with PyTorch Lightning's Trainer (needs the `lightning` extra).

    python examples/lightning_dqn.py --env CartPole-v1 --seed 0 --stop-reward 195
    gymlab eval   lightning_logs/version_0/checkpoints/best.ckpt --episodes 20
    gymlab record lightning_logs/version_0/checkpoints/best.ckpt --out cartpole.mp4
    tensorboard --logdir lightning_logs

Every DQN hyperparameter is a flag (`--help`), derived from DQNConfig as in `gymlab train
dqn`, with the same tuned defaults per environment. The Trainer is Lightning's, with its
TensorBoard logger and a ModelCheckpoint that keeps the best evaluation (best.ckpt) and the
latest state (last.ckpt); put your own callbacks, loggers or devices in `make_trainer`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from gymlab.cli import EXIT_USER_ERROR, Parser
from gymlab.core.config import add_arguments
from gymlab.core.errors import UserError

RUN_OPTIONS = ["env", "env_kwargs", "seed", "total_steps", "stop_reward", "eval_every",
               "eval_episodes", "log_every", "torch_threads"]
"""The RunConfig fields that apply under Lightning (it owns logging, progress, checkpoints)."""


def make_trainer(root_dir: str, accelerator: str) -> tuple[Any, Any]:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    best = ModelCheckpoint(monitor="eval/return_mean", mode="max", filename="best",
                           save_last=True)
    # max_epochs=-1: the module stops the Trainer at total_steps or at stop_reward
    return L.Trainer(max_epochs=-1, default_root_dir=root_dir, accelerator=accelerator,
                     callbacks=[best], num_sanity_val_steps=0), best


def main(argv: Sequence[str] | None = None) -> int:
    from gymlab.agents.dqn import DQNConfig
    from gymlab.core.run import RunConfig

    parser = Parser(prog="lightning_dqn.py", description=__doc__.split("\n")[0])
    add_arguments(parser, RunConfig, "run options", only=RUN_OPTIONS)
    add_arguments(parser, DQNConfig, "dqn hyperparameters")
    parser.add_argument("--root-dir", default=".", help="where Lightning writes lightning_logs/ "
                        "(default: the current directory)")
    parser.add_argument("--accelerator", default="cpu", help="Lightning accelerator (default: "
                        "cpu, the fastest for networks this small)")
    args = vars(parser.parse_args(argv))
    root_dir, accelerator = args.pop("root_dir"), args.pop("accelerator")
    try:
        from gymlab.integrations.lightning import DQNModule

        module = DQNModule(args.pop("env", "CartPole-v1"), **args)
        trainer, best = make_trainer(root_dir, accelerator)
        trainer.fit(module)
    except UserError as exc:
        print(f"gymlab: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    outcome = (f"solved at step {module.solved_step}" if module.solved_step is not None
               else f"finished {module.agent.step} steps")
    score = float(best.best_model_score) if best.best_model_score is not None else None
    print(f"{outcome}; best evaluation {score}: {best.best_model_path}")
    print(f"evaluate it with: gymlab eval {best.best_model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
