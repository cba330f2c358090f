"""The solve-time protocol shared by the benchmarks that race gymlab against a peer library.

A run is solved at the first evaluation (N deterministic episodes through gymlab's Evaluator)
whose mean return reaches the threshold. Libraries alternate per seed, so a change in machine
load hits both alike; the table reports steps, wall and CPU seconds and the ratio of medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from gymlab.core.evaluation import Evaluator

EVAL_SEED_OFFSET = 1_000_000  # as gymlab's Session seeds its Evaluator


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


class SolveCallback(BaseCallback):
    """gymlab's evaluation schedule and stop rule for SB3: every `eval_every` steps, `act`
    (batched observations -> actions) runs through gymlab's Evaluator; training stops once
    the mean return reaches `stop_reward`."""

    def __init__(self, env_id: str, seed: int, eval_every: int, episodes: int,
                 stop_reward: float, act: Callable[[BaseCallback, np.ndarray], np.ndarray]):
        super().__init__()
        self.evaluator = Evaluator(env_id, episodes, seed + EVAL_SEED_OFFSET)
        self.eval_every, self.stop_reward, self.act = eval_every, stop_reward, act
        self.next_eval = eval_every
        self.solved_at: int | None = None

    def _on_step(self) -> bool:
        if self.num_timesteps < self.next_eval:
            return True
        while self.next_eval <= self.num_timesteps:
            self.next_eval += self.eval_every
        with torch.no_grad():
            mean = self.evaluator(lambda obs: self.act(self, obs)).mean
        if mean >= self.stop_reward:
            self.solved_at = self.num_timesteps
            return False  # stops model.learn
        return True

    def _on_training_end(self) -> None:
        self.evaluator.close()


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


def main(description: str, runners: dict[str, Callable[[int], RunResult]]) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", default="5", type=parse_seeds,
                        help="a count N (seeds 0..N-1), a range A-B, or a list A,B,C (default: 5)")
    parser.add_argument("--libraries", nargs="+", choices=list(runners),
                        default=list(runners), help="which libraries to run (default: both)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    # torch imports torch._dynamo (1.5-3.5 s here) at a process's first optimizer: pay it
    # before timing, or it lands on whichever run comes first
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    print(f"load average at start: {load()}")
    results: list[RunResult] = []
    for seed in args.seeds:
        for lib in args.libraries:
            result = runners[lib](seed)
            results.append(result)
            steps = result.solved_at if result.solved_at is not None else "not solved"
            print(f"  {lib:>6} seed {seed}: {steps} steps, {result.wall_s:.2f} s wall, "
                  f"{result.cpu_s:.2f} s CPU", flush=True)
    print(f"load average at end: {load()}\n")
    print_table(results, args.libraries, args.seeds)
