"""Leave-one-table-out for the network searchers (`nas_search.py --part tables`).

For each shipped architecture table in turn held out, every searcher's settings are chosen
from its small grid (GRIDS) on the other tables, with the tuning seeds, and then run on the
held-out table with other seeds (the reported ones). A setting's tuning score is its regret
at 25, 50 and 100 candidates divided by random search's on the same table, averaged over
the tuning tables (tables differ in how far apart their networks are, so raw points would
let one table decide).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import gymlab.nas.search as nas_search
from gymlab.nas import NASSearch
from gymlab.nas.table import SHIPPED, ArchitectureTable

BUDGET = 100
CHECKPOINTS = (25, 50, 100)
REPORT_SEED0 = 1000
"""Reported seeds start here; tuning seeds start at 0, so the two never overlap."""

_RL_CHOICES = [*({"gamma": g, "repeat_reward": r} for g in (0.99, 0.0) for r in (None, 0.0)),
               {"gamma": 0.0, "mutate_repeats": True}]
_PPO_CHOICES = [*_RL_CHOICES, *({"gamma": 0.0, "mutate_repeats": True, **step}
                                for step in ({"learning_rate": 1e-2}, {"ent_coef": 0.0},
                                             {"learning_rate": 1e-2, "ent_coef": 0.0},
                                             {"num_steps": 4}, {"update_epochs": 10})),
                *({"gamma": 0.0, "mutate_repeats": True, "edit_elites": k, **step}
                  for k, step in ((3, {}), (5, {}), (10, {}), (5, {"ent_coef": 0.0}),
                                  (5, {"update_epochs": 10})))]
GRIDS: dict[str, list[dict[str, Any]]] = {
    "evolution": [{"population": p, "sample_size": k, "distinct": d}
                  for p, k in ((10, 3), (20, 5), (40, 5)) for d in (False, True)],
    "random": [{}],
    "ppo": _PPO_CHOICES,
    "ppo-improvement": _RL_CHOICES,
    "dqn": _RL_CHOICES,
}
"""Per searcher, the settings leave-one-out chooses among: NASConfig fields (population,
sample_size), EVOLUTION_DEFAULTS (distinct), the agents' config (gamma, ...) and the RL
env's (ENV_OPTIONS). PPO's grid holds both of its designs: proposing every layer id, and
editing one of the `edit_elites` best networks so far (gymlab.nas.elites)."""
SEARCHERS = tuple(GRIDS)
ENV_OPTIONS = ("repeat_reward", "mutate_repeats", "edit_elites")
"""The grids' settings that are the RL environment's (RL_ENV_DEFAULTS), not the agent's."""


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def searcher_settings(searcher: str, setting: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The search options of `setting`; the module defaults it names are set meanwhile."""
    agent = searcher.split("-")[0]
    saved = (dict(nas_search.EVOLUTION_DEFAULTS),
             {k: dict(v) for k, v in nas_search.RL_ENV_DEFAULTS.items()},
             {k: dict(v) for k, v in nas_search.RL_SEARCHER_DEFAULTS.items()})
    options: dict[str, Any] = {"searcher": agent,
                               "reward": "improvement" if searcher.endswith("improvement")
                               else "accuracy"}
    env_defaults = nas_search.RL_ENV_DEFAULTS.setdefault(agent, {})
    env_defaults.clear()  # a setting names every env option it wants
    try:
        for key, value in setting.items():
            if key in ("population", "sample_size"):
                options[key] = value
            elif key == "distinct":
                nas_search.EVOLUTION_DEFAULTS[key] = value
            elif key in ENV_OPTIONS:
                if value is not None:
                    env_defaults[key] = value
            else:
                nas_search.RL_SEARCHER_DEFAULTS[agent][key] = value
        yield options
    finally:
        nas_search.EVOLUTION_DEFAULTS.clear()
        nas_search.EVOLUTION_DEFAULTS.update(saved[0])
        nas_search.RL_ENV_DEFAULTS.clear()
        nas_search.RL_ENV_DEFAULTS.update(saved[1])
        nas_search.RL_SEARCHER_DEFAULTS.clear()
        nas_search.RL_SEARCHER_DEFAULTS.update(saved[2])


class Outcomes:
    """Each search's best-so-far at the checkpoints and its candidates to within 1 point,
    by (searcher, setting, table, seed); kept in a JSON file when one is given."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.data: dict[str, list[float]] = {}
        if self.path is not None and self.path.is_file():
            self.data = json.loads(self.path.read_text())
        self.tables: dict[str, ArchitectureTable] = {}
        self.unsaved = 0

    def optimum(self, table: str, seed: int) -> float:
        """The best network's best valid accuracy under the search's training seed."""
        t = self.tables.setdefault(table, ArchitectureTable(table))
        acc = np.where(t.built, t.curves["valid_acc"].max(axis=2), 0.0)
        return float(acc[:, seed % t.n_seeds].max())

    def get(self, searcher: str, setting: dict[str, Any], table: str,
            seed: int) -> list[float]:
        """[regret@25, regret@50, regret@100, candidates to within 1 point (BUDGET + 1 when
        never)]."""
        key = json.dumps([searcher, setting, table, seed], sort_keys=True)
        if key not in self.data:
            self.data[key] = self._run(searcher, setting, table, seed)
            self.unsaved += 1
            if self.unsaved >= 50:
                self.save()
        return self.data[key]

    def _run(self, searcher: str, setting: dict[str, Any], table: str,
             seed: int) -> list[float]:
        t = self.tables.setdefault(table, ArchitectureTable(table))
        with searcher_settings(searcher, setting) as options:
            with NASSearch(evaluator="table", table=table, layers=t.layers, budget=BUDGET,
                           seed=seed, logdir=None, progress=False, **options) as run:
                run.learn()
        acc = np.array([c.result.best_valid_acc if c.result.ok else 0.0
                        for c in run.result.candidates])
        so_far = np.maximum.accumulate(acc)
        optimum = self.optimum(table, seed)
        hit = np.flatnonzero(so_far >= optimum - 1.0)
        return [*(optimum - float(so_far[c - 1]) for c in CHECKPOINTS),
                float(hit[0] + 1 if len(hit) else BUDGET + 1)]

    def save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            tmp.replace(self.path)
        self.unsaved = 0


def tuning_score(outcomes: Outcomes, searcher: str, setting: dict[str, Any],
                 tables: list[str], seeds: range) -> float:
    """Mean over `tables` of the regret at the checkpoints relative to random search's."""
    ratios = []
    for table in tables:
        mine = np.mean([outcomes.get(searcher, setting, table, s)[:3] for s in seeds])
        chance = np.mean([outcomes.get("random", {}, table, s)[:3] for s in seeds])
        ratios.append(mine / max(chance, 1e-6))
    return float(np.mean(ratios))


def describe(setting: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in setting.items()) or "-"


def leave_one_table_out(searchers: str | None, seeds: int, tune_seeds: int,
                        tables: str | None, cache: str | None, tune_only: bool = False) -> None:
    names = tables.split(",") if tables else sorted(p.stem for p in SHIPPED.glob("*.npz"))
    chosen_searchers = searchers.split(",") if searchers else list(SEARCHERS)
    outcomes = Outcomes(cache)
    tuning, reported = range(tune_seeds), range(REPORT_SEED0, REPORT_SEED0 + seeds)
    if tune_only:  # fill the cache with the tuning searches of `names`, a table at a time
        for table in names:
            for searcher in chosen_searchers:
                for setting in GRIDS[searcher]:
                    for seed in tuning:
                        outcomes.get(searcher, setting, table, seed)
            outcomes.save()
            print(f"tuning searches on {table} done (load {load()})", flush=True)
        return
    start = time.perf_counter()
    print(f"leave-one-table-out: {len(names)} tables, budget {BUDGET}, tuning seeds "
          f"0..{tune_seeds - 1}, reported seeds {reported[0]}..{reported[-1]}; load {load()}")
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    matrix: dict[tuple[str, str], np.ndarray] = {}
    for held_out in names:
        others = [t for t in names if t != held_out]
        for searcher in chosen_searchers:
            grid = GRIDS[searcher]
            scores = [tuning_score(outcomes, searcher, g, others, tuning) if len(grid) > 1
                      else 0.0 for g in grid]
            best = grid[int(np.argmin(scores))]
            chosen[held_out, searcher] = best
            matrix[held_out, searcher] = np.array(
                [outcomes.get(searcher, best, held_out, s) for s in reported])
            print(f"  {held_out} {searcher}: tuning scores "
                  f"{', '.join(f'{x:.3f}' for x in scores)} -> {describe(best)} "
                  f"({time.perf_counter() - start:.0f}s, load {load()})", flush=True)
        outcomes.save()
    print_matrix(names, chosen_searchers, chosen, matrix, seeds)
    print(f"({time.perf_counter() - start:.0f}s; load {load()})")


def print_matrix(names: list[str], searchers: list[str],
                 chosen: dict[tuple[str, str], dict[str, Any]],
                 matrix: dict[tuple[str, str], np.ndarray], seeds: int) -> None:
    print(f"\nheld-out results (mean over {seeds} seeds; regret in points of best valid "
          "accuracy; within-1: median candidates, share of searches that got there)")
    for held_out in names:
        t = ArchitectureTable(held_out)
        meta = t.meta
        print(f"\n{held_out}: {meta['dataset']}, space {meta['space_name']}, "
              f"{meta['layers']} layers, {meta['settings']['epochs']} epochs "
              f"{meta['settings']['optimizer']}; tuned on the other tables")
        print(f"  {'searcher':<16} {'r@25':>6} {'r@50':>6} {'(se)':>6} {'r@100':>6} "
              f"{'within-1':>9} {'got':>5}  chosen")
        for searcher in searchers:
            m = matrix[held_out, searcher]
            se = statistics.stdev(m[:, 1]) / np.sqrt(len(m))
            got = float(np.mean(m[:, 3] <= BUDGET))
            within = statistics.median(m[:, 3])
            within_text = f"{within:.0f}" if within <= BUDGET else f">{BUDGET}"
            print(f"  {searcher:<16} {m[:, 0].mean():6.2f} {m[:, 1].mean():6.2f} "
                  f"{se:6.2f} {m[:, 2].mean():6.2f} {within_text:>9} {got:5.0%}  "
                  f"{describe(chosen[held_out, searcher])}")
    targets(names, searchers, matrix)


def targets(names: list[str], searchers: list[str],
            matrix: dict[tuple[str, str], np.ndarray]) -> None:
    """The issue's targets, per held-out table, on regret@50 and regret@100."""
    default = nas_search.NASConfig().searcher
    print("\ntargets (regret@50 / regret@100):")
    for held_out in names:
        def r(searcher: str, table: str = held_out) -> np.ndarray:
            return matrix[table, searcher][:, 1:3].mean(axis=0)

        lines = []
        if "ppo" in searchers and "evolution" in searchers:
            gap = r("ppo") - r("evolution")
            lines.append(f"ppo - evolution {gap[0]:+.2f} / {gap[1]:+.2f} "
                         f"({'met' if (gap <= 0.1).all() else 'NOT met'})")
        if "dqn" in searchers and "random" in searchers:
            gap = r("dqn") - r("random")
            lines.append(f"dqn - random {gap[0]:+.2f} / {gap[1]:+.2f} "
                         f"({'met' if (gap < 0).all() else 'NOT met'})")
        if default in searchers and "random" in searchers:
            gap = r(default) - r("random")
            lines.append(f"{default} - random {gap[0]:+.2f} / {gap[1]:+.2f} "
                         f"({'met' if (gap < 0).all() else 'NOT met'})")
        print(f"  {held_out}: " + "; ".join(lines))
