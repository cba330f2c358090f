"""Successive halving (Jamieson & Talwalkar, 2016): rank a round of candidates by a short
training, and train only the most promising ones for longer, up to the full epochs.

With `min_epochs` r, reduction factor eta and E full epochs, the rungs are r, r*eta,
r*eta^2, ... (those below E), then E; each rung keeps the best ceil(n / eta) by best valid
accuracy. A candidate stopped at a rung is answered with that shorter training's result,
so the searcher sees it (a lower fidelity, a lower accuracy) and the budget counts it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gymlab.envs.nas.env import NASEnv
from gymlab.envs.nas.workers import CandidatePool


def rungs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """Training epochs of each rung, the last being `epochs`."""
    out, e = [], min_epochs
    while e < epochs:
        out.append(e)
        e *= eta
    return [*out, epochs]


def successive_halving(env: NASEnv, batch: Sequence[Sequence[int]], pool: CandidatePool,
                       min_epochs: int, eta: int) -> None:
    """Train `batch` by successive halving; afterwards `env.step(ids)` answers each network's
    result at the rung where it stopped (the full training for the survivors)."""
    survivors = _unique(env, batch)
    screened = {}
    for epochs in rungs(min_epochs, eta, env.settings.epochs)[:-1]:
        results = env.train_batch(survivors, pool, epochs)
        # ties keep the proposal order: the ranking, and so the search, is deterministic
        order = sorted(range(len(survivors)),
                       key=lambda i: -(results[i][0].best_valid_acc if results[i][0].ok
                                       else -1.0))
        keep = math.ceil(len(survivors) / eta)
        screened.update({tuple(survivors[i]): results[i] for i in order[keep:]})
        survivors = [survivors[i] for i in sorted(order[:keep])]
    env.screen(screened)
    env.prefetch(survivors, pool)


def _unique(env: NASEnv, batch: Sequence[Sequence[int]]) -> list[list[int]]:
    seen, out = set(), []
    for ids in batch:
        key = env.space.canonical(ids)
        if key not in seen:
            seen.add(key)
            out.append([int(i) for i in ids])
    return out
