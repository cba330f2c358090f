"""Successive halving (Jamieson & Talwalkar, 2016): rank a round of candidates by a short
training, and train only the most promising ones for longer, up to the full epochs.

With `min_epochs` r, reduction factor eta and E full epochs, the rungs are r, r*eta,
r*eta^2, ... (those below E), then E; each rung keeps the best ceil(n / eta) by best valid
accuracy. A candidate stopped at a rung is answered with that shorter training's result,
so the searcher sees it (a lower fidelity, a lower accuracy) and the budget counts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence

from gymlab.nas.trainer import CandidateResult

TrainBatch = Callable[[Sequence[Sequence[int]], int], list[tuple[CandidateResult, bool]]]
"""(networks, epochs) -> (result, cache hit) for each: an Evaluator's train_batch."""


def rungs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """Training epochs of each rung, the last being `epochs`."""
    out, e = [], min_epochs
    while e < epochs:
        out.append(e)
        e *= eta
    return [*out, epochs]


def successive_halving(
        train_batch: TrainBatch, canonical: Callable[[Sequence[int]], Hashable],
        batch: Sequence[Sequence[int]], min_epochs: int, eta: int, epochs: int,
) -> tuple[dict[tuple[int, ...], tuple[CandidateResult, bool]], list[list[int]]]:
    """Screen `batch` through the rungs below `epochs`: the networks stopped at a rung, each
    with its (result, cache hit) there, and the survivors, still to be trained fully.
    Networks equal under `canonical` are ranked once."""
    survivors = _unique(canonical, batch)
    screened = {}
    for rung in rungs(min_epochs, eta, epochs)[:-1]:
        results = train_batch(survivors, rung)
        # ties keep the proposal order: the ranking, and so the search, is deterministic
        order = sorted(range(len(survivors)),
                       key=lambda i: -(results[i][0].best_valid_acc if results[i][0].ok
                                       else -1.0))
        keep = math.ceil(len(survivors) / eta)
        screened.update({tuple(survivors[i]): results[i] for i in order[keep:]})
        survivors = [survivors[i] for i in sorted(order[:keep])]
    return screened, survivors


def _unique(canonical: Callable[[Sequence[int]], Hashable],
            batch: Sequence[Sequence[int]]) -> list[list[int]]:
    seen, out = set(), []
    for ids in batch:
        key = canonical(ids)
        if key not in seen:
            seen.add(key)
            out.append([int(i) for i in ids])
    return out
