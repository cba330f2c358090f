"""Training speed of gymlab's DQN under `lightning.Trainer` against gymlab's own loop.

Protocol
--------
* The same run on both paths: CartPole-v1, gymlab's tuned DQN config (one update every 4
  environment steps, batch 64, a (128, 128) network), a fixed seed, a fixed number of
  environment steps, no stop reward. The two paths run the same loop (`DQN.replay_batches`),
  so they do exactly the same work and end with the same weights (checked below).
* Two settings:
  - ``loop``: the training loop alone. gymlab: ``logdir=None`` (nothing logged),
    ``eval_every=0``. Lightning: ``logger=False``, no checkpoints, no validation.
  - ``full``: what a user runs. gymlab: a run directory (TensorBoard + progress.jsonl),
    evaluation of 10 episodes and best/last checkpoints every 1,000 steps. Lightning:
    TensorBoardLogger, ModelCheckpoint (eval/return_mean, save_last), validation of 10
    episodes every epoch (= 1,000 environment steps of updates).
* Also ``per-step-log``: the ``full`` Lightning run with the 4 scalars of the usual
  tutorial (here loss, epsilon, episode reward, mean Q) sent through ``self.log`` at every
  gradient step -- what `DQNModule` avoids by logging every `log_every` steps.
* Lightning runs `DQNModule` as users get it: manual optimization, 8 updates per Lightning
  batch (`updates_per_batch`'s default).
* Runs alternate (gymlab, Lightning, gymlab, ...) so that a change of machine load hits
  both; printed are the median environment steps per second of `--repeats` runs, the ratio
  gymlab / Lightning (Lightning's slowdown), per wall second and per CPU second of the
  process (steadier on a shared machine: both paths are single-threaded), and the load
  average at start and end. One torch thread everywhere. Each run includes its start-up
  (building the agent; Lightning's Trainer setup); one short untimed run of each path comes
  first, so that neither pays the imports (TensorBoard's writer) in its first timing.
* ``+CPU ms/update``: Lightning's CPU time beyond gymlab's per gradient step (median over
  the pairs of runs; start-up included; both paths' step counts are checked equal).

Run:  python benchmarks/lightning_dqn.py [--steps 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from gymlab import DQN
from gymlab.integrations.lightning import DQNModule

ENV_ID = "CartPole-v1"
SEED = 0
SETTINGS = ["loop", "full", "per-step-log"]
COMMON = {"seed": SEED, "stop_reward": None, "progress": False, "log_every": 1_000}


class PerStepLogging(DQNModule):
    """DQNModule as the tutorial logs: four scalars through self.log at every update."""

    def update(self, optimizer: Any, minibatch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        loss = super().update(optimizer, minibatch)
        self.log_dict({"loss": loss, "epsilon": self.agent.epsilon(),
                       "episode_reward": float(self.agent.envs.episode_returns[0]),
                       "q_mean": self.agent.last_q}, batch_size=1)
        return loss


Result = tuple[float, float, list[torch.Tensor], int]
"""steps per wall second, steps per CPU second of this process, final Q-network weights,
gradient steps taken"""


def trained(agent: DQN) -> tuple[list[torch.Tensor], int]:
    """The final Q-network weights, and the gradient steps Adam took (its step count)."""
    updates = int(next(iter(agent.optimizer.state.values()))["step"])
    return [p.detach().clone() for p in agent.q_net.parameters()], updates


def native(steps: int, full: bool) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        options = {"logdir": tmp, "eval_every": 1_000} if full else {"logdir": None,
                                                                      "eval_every": 0}
        wall, cpu = time.perf_counter(), time.process_time()
        agent = DQN(ENV_ID, total_steps=steps, **COMMON, **options)
        agent.learn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return steps / wall, steps / cpu, *trained(agent)


def lightning(steps: int, full: bool, cls: type[DQNModule] = DQNModule) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        module = cls(ENV_ID, total_steps=steps, **COMMON,
                     **({"eval_every": 1_000} if full else {"eval_every": 0}))
        trainer = L.Trainer(
            max_epochs=-1, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, default_root_dir=tmp,
            logger=TensorBoardLogger(tmp) if full else False,
            enable_checkpointing=full,
            callbacks=[ModelCheckpoint(monitor="eval/return_mean", mode="max",
                                       save_last=True)] if full else None,
            limit_val_batches=1 if full else 0)
        trainer.fit(module)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert module.agent.step == steps, module.agent.step
    return steps / wall, steps / cpu, *trained(module.agent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=SETTINGS,
                        help="which settings to run (default: all)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric"):
        import logging

        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    for warm_up in (lambda: native(1_500, True), lambda: lightning(1_500, True)):
        warm_up()  # imports and lazy set-up (TensorBoard's writer, ...) out of the timings
    print(f"load average at start: {os.getloadavg()}")
    runs: dict[str, tuple[Callable[[], Result], Callable[[], Result]]] = {
        "loop": (lambda: native(args.steps, False), lambda: lightning(args.steps, False)),
        "full": (lambda: native(args.steps, True), lambda: lightning(args.steps, True)),
        "per-step-log": (lambda: native(args.steps, True),
                              lambda: lightning(args.steps, True, PerStepLogging)),
    }
    print(f"{'':<18} {'steps per wall second':^30} {'steps per CPU second':^30}")
    print(f"{'setting':<18} {'gymlab':>8} {'Lightning':>10} {'ratio':>10} "
          f"{'gymlab':>8} {'Lightning':>10} {'ratio':>10}  {'+CPU ms/update':>14}  same weights")
    for name in args.settings:
        run_native, run_lightning = runs[name]
        rates: list[tuple[float, float, float, float]] = []
        extra: list[float] = []  # Lightning's CPU seconds beyond gymlab's, per gradient step
        same = True
        for _ in range(args.repeats):
            wall_n, cpu_n, w_n, updates_n = run_native()
            wall_l, cpu_l, w_l, updates_l = run_lightning()
            rates.append((wall_n, wall_l, cpu_n, cpu_l))
            extra.append(args.steps * (1 / cpu_l - 1 / cpu_n) / updates_n)
            same &= updates_n == updates_l and all(torch.equal(a, b) for a, b in zip(w_n, w_l))
        wn, wl, cn, cl = (statistics.median(column) for column in zip(*rates))
        print(f"{name:<18} {wn:>8,.0f} {wl:>10,.0f} {wn / wl:>9.2f}x "
              f"{cn:>8,.0f} {cl:>10,.0f} {cn / cl:>9.2f}x  {1e3 * statistics.median(extra):>14.3f}"
              f"  {same}", flush=True)
    print(f"{args.steps:,} environment steps per run, {args.repeats} runs each, medians; "
          f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
