"""Time to solve CartPole-v1 with DQN: gymlab against Stable-Baselines3.

Protocol
--------
* gymlab: ``DQN("CartPole-v1", seed=s)`` with its tuned CartPole defaults (gymlab/hyperparams.py)
  and the full run machinery a user gets: a run directory in a temporary folder, TensorBoard
  events, progress.jsonl, best/last checkpoints at every evaluation.
* Stable-Baselines3: ``DQN("MlpPolicy", "CartPole-v1", seed=s)`` with RL-Baselines3-Zoo's tuned
  CartPole-v1 hyperparameters (below), its exploration schedule stretched over the step cap.
* Both stop at the first evaluation whose mean return is >= 475 ("solved"), or at 100,000
  environment steps. An evaluation runs every 1,000 steps: 10 deterministic (greedy)
  episodes through the same `gymlab.core.evaluation.Evaluator`, seeded ``s + 1_000_000`` as a
  gymlab training session seeds it. SB3 acts through the argmax of its ``q_net`` on the
  batched observations.
* One torch thread for both. Runs alternate per seed (gymlab s, SB3 s, gymlab s+1, ...), so a
  change in machine load hits both libraries alike.
* Per run: steps at the solving evaluation, wall seconds (``time.perf_counter``) and CPU
  seconds of this process (``time.process_time``) from agent construction to the stop.
  Unsolved runs count with the time they took to reach the cap.
* Printed: a per-seed table, the medians, and the ratios SB3 / gymlab of the median wall and
  CPU times, with the load average (``os.getloadavg``) at start and end. On a shared machine,
  compare only ratios measured within one invocation.

Run:  python benchmarks/cartpole_dqn.py [--seeds 5 | --seeds 5-9 | --seeds 0,3,7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from stable_baselines3 import DQN as SB3DQN
from stable_baselines3.common.callbacks import BaseCallback

from gymlab import DQN
from gymlab.core.evaluation import Evaluator

ENV_ID = "CartPole-v1"
STOP_REWARD = 475.0
TOTAL_STEPS = 100_000
EVAL_EVERY = 1_000
EVAL_EPISODES = 10
EVAL_SEED_OFFSET = 1_000_000  # as gymlab's TrainingSession seeds its Evaluator

# RL-Baselines3-Zoo, hyperparams/dqn.yml, CartPole-v1
SB3_ZOO_CARTPOLE: dict[str, object] = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1_000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}


@dataclass(frozen=True)
class RunResult:
    library: str
    seed: int
    solved_at: int | None
    """Environment steps at the solving evaluation; None if the cap was reached first."""
    wall_s: float
    cpu_s: float


def timed(library: str, seed: int, train: Callable[[], int | None]) -> RunResult:
    """Run `train` (construct an agent and train it; return the solving step or None),
    measuring wall and process CPU time."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    solved_at = train()
    return RunResult(library, seed, solved_at,
                     time.perf_counter() - wall0, time.process_time() - cpu0)


def run_gymlab(seed: int) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="gymlab-bench-") as logdir:

        def train() -> int | None:
            agent = DQN(ENV_ID, seed=seed, logdir=logdir, progress=False,
                        eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES,
                        stop_reward=STOP_REWARD, total_steps=TOTAL_STEPS).learn()
            return agent.step if agent.outcome == "solved" else None

        return timed("gymlab", seed, train)


class SolveCallback(BaseCallback):
    """gymlab's evaluation schedule and stop rule for SB3: every EVAL_EVERY steps, the greedy
    policy runs through gymlab's Evaluator; training stops once the mean return is solved."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.evaluator = Evaluator(ENV_ID, EVAL_EPISODES, seed + EVAL_SEED_OFFSET)
        self.next_eval = EVAL_EVERY
        self.solved_at: int | None = None

    def _greedy(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model.q_net(torch.from_numpy(obs)).argmax(1).numpy()

    def _on_step(self) -> bool:
        if self.num_timesteps < self.next_eval:
            return True
        while self.next_eval <= self.num_timesteps:
            self.next_eval += EVAL_EVERY
        if self.evaluator(self._greedy).mean >= STOP_REWARD:
            self.solved_at = self.num_timesteps
            return False  # stops model.learn
        return True

    def _on_training_end(self) -> None:
        self.evaluator.close()


def run_sb3(seed: int) -> RunResult:
    def train() -> int | None:
        model = SB3DQN("MlpPolicy", ENV_ID, seed=seed, device="cpu", verbose=0,
                       **SB3_ZOO_CARTPOLE)  # type: ignore[arg-type]
        callback = SolveCallback(seed)
        model.learn(total_timesteps=TOTAL_STEPS, callback=callback)
        return callback.solved_at

    return timed("sb3", seed, train)


RUNNERS: dict[str, Callable[[int], RunResult]] = {"gymlab": run_gymlab, "sb3": run_sb3}


def parse_seeds(text: str) -> list[int]:
    """'5' -> 0..4, '5-9' -> 5..9, '0,3,7' -> those."""
    if "," in text:
        return [int(s) for s in text.split(",") if s.strip()]
    if "-" in text:
        first, last = (int(s) for s in text.split("-", 1))
        return list(range(first, last + 1))
    return list(range(int(text)))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_table(results: list[RunResult], libraries: list[str], seeds: list[int]) -> None:
    by_key = {(r.library, r.seed): r for r in results}
    header = f"{'seed':>4}"
    for lib in libraries:
        header += f" | {lib + ' steps':>13} {'wall s':>7} {'CPU s':>7}"
    print(header)
    print("-" * len(header))

    def row(label: str, cells: list[tuple[str, float, float]]) -> str:
        line = f"{label:>4}"
        for steps, wall, cpu in cells:
            line += f" | {steps:>13} {wall:>7.2f} {cpu:>7.2f}"
        return line

    for seed in seeds:
        cells = []
        for lib in libraries:
            r = by_key[(lib, seed)]
            steps = f"{r.solved_at:,}" if r.solved_at is not None else "not solved"
            cells.append((steps, r.wall_s, r.cpu_s))
        print(row(str(seed), cells))
    print("-" * len(header))
    medians: dict[str, tuple[float, float]] = {}
    cells = []
    for lib in libraries:
        runs = [by_key[(lib, s)] for s in seeds]
        solved = [r.solved_at for r in runs if r.solved_at is not None]
        wall = statistics.median(r.wall_s for r in runs)
        cpu = statistics.median(r.cpu_s for r in runs)
        medians[lib] = (wall, cpu)
        steps = f"{statistics.median(solved):,.0f}" if solved else "-"
        cells.append((steps, wall, cpu))
    print(row("med", cells))
    solved_counts = ", ".join(
        f"{lib} {sum(by_key[(lib, s)].solved_at is not None for s in seeds)}/{len(seeds)}"
        for lib in libraries)
    print(f"solved: {solved_counts} (median steps over solved runs; times over all runs)")
    if "gymlab" in medians and "sb3" in medians:
        (g_wall, g_cpu), (s_wall, s_cpu) = medians["gymlab"], medians["sb3"]
        print(f"median wall time SB3 / gymlab: {s_wall / g_wall:.2f}x")
        print(f"median CPU time  SB3 / gymlab: {s_cpu / g_cpu:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="5", type=parse_seeds,
                        help="a count N (seeds 0..N-1), a range A-B, or a list A,B,C (default: 5)")
    parser.add_argument("--libraries", nargs="+", choices=list(RUNNERS),
                        default=list(RUNNERS), help="which libraries to run (default: both)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    print(f"load average at start: {load()}")
    results: list[RunResult] = []
    for seed in args.seeds:
        for lib in args.libraries:
            result = RUNNERS[lib](seed)
            results.append(result)
            steps = result.solved_at if result.solved_at is not None else "not solved"
            print(f"  {lib:>6} seed {seed}: {steps} steps, {result.wall_s:.2f} s wall, "
                  f"{result.cpu_s:.2f} s CPU", flush=True)
    print(f"load average at end: {load()}\n")
    print_table(results, args.libraries, args.seeds)


if __name__ == "__main__":
    main()
