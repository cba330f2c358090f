"""Neural architecture search: an environment in which an agent designs CNNs, and the search
that drives it.

    env.py          gymlab/NAS-v0: one step = one candidate network (layerwise.py: one layer;
                    elites.py: edit actions on the best networks so far, PPO's)
    evaluator.py    scores candidates: cache + cache.jsonl, workers/Ray, table lookups, halving
    search_space.py, builder.py, datasets.py, trainer.py     what a candidate is and how it trains
    table.py        every architecture of a small space trained once (lookups)
    objective.py    a candidate's fitness: accuracy, or accuracy vs size under caps; Pareto
    searchers.py    ask/tell proposers (regularized evolution, random); halving.py
    search.py       NASSearch, the search as a gymlab Algorithm; results.py; report.py

`import gymlab.nas` registers the environments and stays light (no torch): the names below
are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymlab.envs  # noqa: F401  registers gymlab/NAS-v0 and gymlab/NASLayerwise-v0
from gymlab.nas.config import NASConfig

_LAZY = {
    "NASSearch": "gymlab.nas.search",
    "Candidate": "gymlab.nas.results", "SearchResult": "gymlab.nas.results",
    "NASEnv": "gymlab.nas.env", "NASLayerwiseEnv": "gymlab.nas.layerwise",
    "Evaluator": "gymlab.nas.evaluator", "leaderboard_lines": "gymlab.nas.report",
}

__all__ = ["NASConfig", "print_leaderboard", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def print_leaderboard(result: Any, top: int = 10) -> None:
    """Print the best `top` distinct architectures of a search's result."""
    from gymlab.nas.report import leaderboard_lines

    for line in leaderboard_lines(result, top):
        print(line)
