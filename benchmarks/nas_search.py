"""Network search: throughput and search quality of gymlab's searchers.

Not a test. Three parts (choose with --part):

* throughput: candidates trained per minute on digits, default space, 5 layers, default
  epochs, random search with --workers 1 and --workers 2 (the same candidates for both).
* table: on the shipped table of every 3-layer network of the default space on digits
  (known optimum), for each searcher and seed: the best valid accuracy found after 25, 50,
  100 and 500 candidates, the gap to the optimum at 50 (regret, in points) and the number of
  candidates needed to come within 1 point of the optimum. The optimum is that of the
  training seed the search's candidates use (seed % 2 of the table's two seeds).
* tables: leave-one-table-out over every shipped table. For each searcher (evolution,
  random, ppo and dqn with the accuracy reward, ppo-improvement with the tutorial's; ppo's
  grid holds its layer-id and its edit-action designs), the settings of its small grid
  (GRIDS) that did best on the other tables (tuning seeds) are run on the held-out table
  (other seeds): regret at 25, 50 and 100 candidates and the candidates needed to come
  within 1 point of the optimum. Prints that matrix. `--cache FILE` keeps each search's
  outcome, so a rerun only adds what is missing.
* cost: seconds per candidate on digits and on a generated CIFAR-shaped set (12,000 train
  images of 3x32x32, the tutorial's setting), for the same --budget (default 5) networks.
* halving: evolution with and without successive halving at equal budgets, and the 2-epoch
  ranking's correlation with the full one on the table.
* live: on digits with 5 layers, the best valid accuracy after 25, 50, 100, 300 candidates
  (up to --budget) for each of --searchers, and in how many seeds the default searcher is at
  least as good as random search.

Run:  python benchmarks/nas_search.py --part table --seeds 10
      python benchmarks/nas_search.py --part tables --seeds 100 --tune-seeds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from gymlab.nas import NASConfig, NASSearch, SearchResult
from gymlab.nas.searchers import RandomSearch
from gymlab.nas.table import ArchitectureTable

CHECKPOINTS = (25, 50, 100, 500)


def search(**options) -> SearchResult:
    """A search with `options` (NASConfig and run fields), kept in memory only."""
    with NASSearch(**{"logdir": None, "progress": False, **options}) as run:
        run.learn()
    return run.result


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def throughput(budget: int) -> None:
    for workers in (1, 2):
        start = time.perf_counter()
        result = search(searcher="random", budget=budget, workers=workers, round_size=8)
        minutes = (time.perf_counter() - start) / 60
        trained = sum(not c.cache_hit for c in result.candidates)
        print(f"workers={workers}: {trained} trained, {len(result.candidates)} candidates in "
              f"{minutes * 60:.1f}s: {len(result.candidates) / minutes:.0f} candidates/min "
              f"(load {load()})")


def table_quality(searchers: list[str], seeds: list[int], budget: int, reward: str) -> None:
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
            result = search(searcher=searcher, evaluator="table", layers=3, budget=budget,
                            seed=seed, reward=reward)
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


def live(searchers: list[str], seeds: list[int], budget: int, workers: int) -> None:
    """Live searches on digits (5 layers): best-so-far per searcher at the checkpoints, then
    the default searcher against random search seed by seed. Digits' validation split is
    small, so accuracies tie often; ties are counted apart and broken by the lower minimum
    validation loss of the best network."""
    checkpoints = [c for c in (25, 50, 100, 300) if c <= budget] or [budget]
    found: dict[str, dict[int, tuple[np.ndarray, float]]] = {}
    for searcher in searchers:
        found[searcher] = {}
        for seed in seeds:
            start = time.perf_counter()
            result = search(searcher=searcher, budget=budget, seed=seed, workers=workers)
            acc = np.array([c.result.best_valid_acc if c.result.ok else 0.0
                            for c in result.candidates])
            best = result.best
            loss = min(best.result.valid_loss) if best else float("inf")
            found[searcher][seed] = (np.maximum.accumulate(acc), loss)
            hits = sum(c.cache_hit for c in result.candidates)
            print(f"seed {seed} {searcher:<10} best {acc.max():.2f}% (valid loss {loss:.4f}), "
                  f"{hits} cache hits, {time.perf_counter() - start:.0f}s, load {load()}",
                  flush=True)
    print("searcher  " + "".join(f"  best@{c:<5}" for c in checkpoints))
    for searcher, per_seed in found.items():
        curves = [so_far for so_far, _ in per_seed.values()]
        cells = "".join(f"  {statistics.mean(s[c - 1] for s in curves):9.2f}" for c in checkpoints)
        print(f"{searcher:<10}{cells}")
    default = NASConfig().searcher
    if default in found and "random" in found and default != "random":
        wins = ties = tie_wins = 0
        for seed in seeds:
            (mine, my_loss), (theirs, their_loss) = found[default][seed], found["random"][seed]
            wins += mine[-1] > theirs[-1]
            if mine[-1] == theirs[-1]:
                ties += 1
                tie_wins += my_loss <= their_loss
        print(f"{default} vs random at {budget} candidates: {wins} better, {ties} equal "
              f"(in {tie_wins} of them its valid loss was as low or lower), "
              f"{len(seeds) - wins - ties} worse: at least as good in {wins + ties}/{len(seeds)}")
    print(f"(load {load()})")


def cost(candidates: int, cifar_examples: int) -> None:
    """Seconds per candidate (default space, 5 layers, default epochs, Adam) on digits and on
    a generated CIFAR-shaped set: random uint8 images [N, 3, 32, 32], split 80/20 as the
    tutorial's 15,000-image subset (12,000 train). The cost of training does not depend on
    the pixels, so random ones measure it."""
    import tempfile

    from gymlab.nas.datasets import load_dataset
    from gymlab.nas.search_space import load_space
    from gymlab.nas.trainer import TrainSettings, train_candidate

    space = load_space("default")
    proposer = RandomSearch(len(space), 5, seed=0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/cifar.npz", x=rng.integers(0, 256, (cifar_examples, 3, 32, 32),
                                                    dtype=np.uint8),
                 y=rng.integers(0, 10, cifar_examples))
        sets = {"digits": load_dataset("digits"),
                "cifar-shaped": load_dataset("npz", f"{tmp}/cifar.npz", split=(0.8, 0.2, 0.0))}
    settings = TrainSettings(optimizer="adam")
    archs = [proposer.ask() for _ in range(candidates)]
    for name, data in sets.items():
        seconds = []
        for ids in archs:
            result = train_candidate(ids, space, data, settings)
            if result.ok:
                seconds.append(result.seconds)
                print(f"{name}: {result.architecture}: {result.params} params, "
                      f"{result.seconds:.2f}s (load {load()})", flush=True)
        epochs = settings.epochs + settings.warmup_epochs
        median = statistics.median(seconds)
        print(f"{name} ({len(data.x_train)} train images): median {median:.2f}s per candidate "
              f"for {epochs} epochs, {median / epochs:.2f}s per epoch")


def halving(seeds: list[int], budget: int) -> None:
    """Evolution on digits with and without successive halving (rounds of 12, first rung at
    2 epochs, eta 3), equal budgets: best valid accuracy and wall time. Also, on the shipped
    table, how well the 2-epoch ranking predicts the full one (Spearman over all networks)."""
    table = ArchitectureTable("digits-default-3")
    acc = np.where(table.built[:, :, None], table.curves["valid_acc"], 0.0)  # [n, seeds, epochs]
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    rho = [np.corrcoef(rank(acc[:, s, :2].max(1)), rank(acc[:, s].max(1)))[0, 1]
           for s in range(table.n_seeds)]
    print(f"table: Spearman of the 2-epoch best valid accuracy with the full one: "
          f"{', '.join(f'{r:.3f}' for r in rho)} (training seeds)")
    for seed in seeds:
        for epochs in (0, 2):
            start = time.perf_counter()
            result = search(budget=budget, round_size=12, halving_epochs=epochs, seed=seed)
            full = sum(not c.screened and not c.cache_hit for c in result.candidates)
            print(f"seed {seed} halving {'on ' if epochs else 'off'}: best "
                  f"{result.best.result.best_valid_acc:.2f}%, {full} trained fully, "
                  f"{time.perf_counter() - start:.1f}s (load {load()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("throughput", "table", "tables", "live", "cost",
                                           "halving"), required=True)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--searchers", default=None,
                        help="default: ppo,dqn,evolution,random (tables: also "
                        "ppo-improvement)")
    parser.add_argument("--reward", default=NASConfig().reward,
                        help="table: the RL searchers' reward (improvement or accuracy)")
    parser.add_argument("--workers", type=int, default=1, help="live: workers per search")
    parser.add_argument("--tune-seeds", type=int, default=20,
                        help="tables: seeds per table to choose settings on")
    parser.add_argument("--tables", default=None,
                        help="tables: comma-separated shipped tables (default: all)")
    parser.add_argument("--cache", default=None, help="tables: JSON file of search outcomes")
    parser.add_argument("--tune-only", action="store_true",
                        help="tables: only run the tuning searches (to fill --cache)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    print(f"load at start: {load()}")
    if args.part == "throughput":
        throughput(args.budget or 48)
    elif args.part == "table":
        table_quality((args.searchers or "ppo,dqn,evolution,random").split(","), seeds,
                      args.budget or 500, args.reward)
    elif args.part == "tables":
        from nas_tables import leave_one_table_out

        leave_one_table_out(args.searchers, args.seeds, args.tune_seeds, args.tables,
                            args.cache, args.tune_only)
    elif args.part == "halving":
        halving(seeds, args.budget or 48)
    elif args.part == "cost":
        cost(args.budget or 5, 15_000)
    else:
        live((args.searchers or "ppo,dqn,evolution,random").split(","), seeds,
             args.budget or 300, args.workers)


if __name__ == "__main__":
    main()
