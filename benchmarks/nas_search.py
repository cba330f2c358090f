"""Network search: throughput and search quality of gymlab's searchers.

Not a test. Three parts (choose with --part):

* throughput: candidates trained per minute on digits, default space, 5 layers, default
  epochs, random search with --workers 1 and --workers 2 (the same candidates for both).
* table: on the shipped table of every 3-layer network of the default space on digits
  (known optimum), for each searcher and seed: the best valid accuracy found after 25, 50,
  100 and 500 candidates, the gap to the optimum at 50 (regret, in points) and the number of
  candidates needed to come within 1 point of the optimum. The optimum is that of the
  training seed the search's candidates use (seed % 2 of the table's two seeds).
* live: on digits with 5 layers, the best valid accuracy after --budget candidates for the
  default searcher and random search, per seed, and in how many seeds the default searcher
  is at least as good.

Run:  python benchmarks/nas_search.py --part table --seeds 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from gymlab.envs.nas.table import ArchitectureTable
from gymlab.nas import NASConfig, search

CHECKPOINTS = (25, 50, 100, 500)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def throughput(budget: int) -> None:
    for workers in (1, 2):
        config = NASConfig(searcher="random", budget=budget, workers=workers, logdir=None,
                           progress=False, round_size=8)
        start = time.perf_counter()
        result = search(config)
        minutes = (time.perf_counter() - start) / 60
        trained = sum(not c.cache_hit for c in result.candidates)
        print(f"workers={workers}: {trained} trained, {len(result.candidates)} candidates in "
              f"{minutes * 60:.1f}s: {len(result.candidates) / minutes:.0f} candidates/min "
              f"(load {load()})")


def table_quality(searchers: list[str], seeds: list[int], budget: int) -> None:
    table = ArchitectureTable("digits-default-3")
    per_seed_best = np.where(table.built, table.curves["valid_acc"].max(axis=2), 0.0).max(0)
    print(f"table: {len(table.built)} networks x {table.n_seeds} seeds; optimum per training "
          f"seed: {', '.join(f'{v:.2f}' for v in per_seed_best)}")
    header = "searcher  " + "".join(f"  best@{c:<5}" for c in CHECKPOINTS if c <= budget)
    print(header + "  regret@50  to-within-1pt (median)")
    for searcher in searchers:
        best_at = {c: [] for c in CHECKPOINTS if c <= budget}
        regrets, within = [], []
        for seed in seeds:
            result = search(NASConfig(searcher=searcher, evaluator="table", layers=3,
                                      budget=budget, seed=seed, logdir=None, progress=False))
            acc = np.array([c.result.best_valid_acc if c.result.ok else 0.0
                            for c in result.candidates])
            so_far = np.maximum.accumulate(acc)
            optimum = per_seed_best[seed % table.n_seeds]
            for c in best_at:
                best_at[c].append(so_far[min(c, len(so_far)) - 1])
            regrets.append(optimum - so_far[min(50, len(so_far)) - 1])
            hit = np.flatnonzero(so_far >= optimum - 1.0)
            within.append(int(hit[0]) + 1 if len(hit) else budget + 1)
        cells = "".join(f"  {statistics.mean(v):9.2f}" for v in best_at.values())
        print(f"{searcher:<10}{cells}  {statistics.mean(regrets):9.2f}  "
              f"{statistics.median(within):>6}")
    print(f"(means over seeds {seeds[0]}..{seeds[-1]}; load {load()})")


def live(searcher: str, seeds: list[int], budget: int) -> None:
    wins = 0
    for seed in seeds:
        best = {}
        for name in (searcher, "random"):
            start = time.perf_counter()
            result = search(NASConfig(searcher=name, budget=budget, seed=seed, logdir=None,
                                      progress=False))
            best[name] = result.best.result.best_valid_acc if result.best else 0.0
            print(f"seed {seed} {name:<10} best {best[name]:.2f}% "
                  f"({time.perf_counter() - start:.0f}s, load {load()})", flush=True)
        wins += best[searcher] >= best["random"]
    print(f"{searcher} at least as good as random in {wins}/{len(seeds)} seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("throughput", "table", "live"), required=True)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--searchers", default="ppo,dqn,evolution,random")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    print(f"load at start: {load()}")
    if args.part == "throughput":
        throughput(args.budget or 48)
    elif args.part == "table":
        table_quality(args.searchers.split(","), seeds, args.budget or 500)
    else:
        live(NASConfig().searcher, seeds, args.budget or 300)


if __name__ == "__main__":
    main()
