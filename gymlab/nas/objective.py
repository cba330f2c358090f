"""What a search maximises: a candidate's fitness from its accuracy and size.

`accuracy`: the best valid accuracy (%). `tradeoff`: that accuracy minus `params_weight`
points per tenfold parameters and `flops_weight` points per tenfold FLOPs, so a network ten
times larger must be that many points more accurate to rank equal. Under either, a network
over `max_params` or `max_flops` is infeasible and ranks below every feasible one (among
themselves, the smaller the overshoot the better), and a network that was not built or not
trained to the end ranks below those.

    fitness(result, config) -> float       # config: a NASConfig (or any object with the fields)
    Objective.from_config(config).score(result)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from gymlab.nas.trainer import CandidateResult

OBJECTIVES = ("accuracy", "tradeoff")
INFEASIBLE = -1000.0
"""Fitness of a network just over a cap; more overshoot goes lower. Below any feasible
fitness (accuracy is 0..100, and a trade-off's size terms stay far above -1000)."""
FAILED = -2000.0
"""Fitness of a network that was not built or not trained to the end."""


@dataclass(frozen=True)
class Objective:
    """A fitness for candidates: accuracy or a weighted accuracy-vs-size trade-off, under
    optional caps on parameters and FLOPs."""

    kind: Literal["accuracy", "tradeoff"] = "accuracy"
    params_weight: float = 1.0
    """tradeoff: accuracy points a tenfold parameter count costs."""
    flops_weight: float = 0.0
    """tradeoff: accuracy points a tenfold FLOP count costs."""
    max_params: int | None = None
    max_flops: int | None = None

    @classmethod
    def from_config(cls, config: Any) -> Objective:
        """The objective of a NASConfig (fields objective, params_weight, flops_weight,
        max_params, max_flops)."""
        return cls(config.objective, config.params_weight, config.flops_weight,
                   config.max_params, config.max_flops)

    @property
    def plain(self) -> bool:
        """Accuracy alone, without caps."""
        return (self.kind == "accuracy" and self.max_params is None
                and self.max_flops is None)

    def overshoot(self, result: CandidateResult) -> float:
        """Decades (log10) by which the network exceeds its worst cap; 0 when feasible."""
        worst = 0.0
        for value, cap in ((result.params, self.max_params), (result.flops, self.max_flops)):
            if cap is not None and value > cap:
                worst = max(worst, math.log10(value / cap))
        return worst

    def feasible(self, result: CandidateResult) -> bool:
        """Built, trained to the end, and within the caps."""
        return result.ok and self.overshoot(result) == 0.0

    def score(self, result: CandidateResult) -> float:
        """The fitness: higher is better; infeasible below feasible, failed below both."""
        # over a cap whether or not it was trained (a capped search skips its training)
        over = self.overshoot(result) if result.built else 0.0
        if over > 0.0:
            return INFEASIBLE - over
        if not result.ok:
            return FAILED
        accuracy = result.best_valid_acc
        if self.kind == "accuracy":
            return accuracy
        return (accuracy - self.params_weight * math.log10(max(result.params, 1))
                - self.flops_weight * math.log10(max(result.flops, 1)))

    def describe(self) -> str:
        """One line: what was maximised under which caps (best_network.json, the log)."""
        if self.kind == "accuracy":
            text = "best valid accuracy"
        else:
            terms = [f"{w:g} x log10({n})" for w, n in ((self.params_weight, "params"),
                                                        (self.flops_weight, "flops")) if w]
            text = " - ".join(["valid accuracy (%)", *terms])
        caps = [f"{n} <= {c}" for n, c in (("params", self.max_params),
                                           ("flops", self.max_flops)) if c is not None]
        return text + (f" with {' and '.join(caps)}" if caps else "")

    def to_json(self) -> dict[str, Any]:
        return {"objective": self.kind, "params_weight": self.params_weight,
                "flops_weight": self.flops_weight, "max_params": self.max_params,
                "max_flops": self.max_flops, "description": self.describe()}


def fitness(result: CandidateResult, config: Any) -> float:
    """The fitness of `result` under the objective of `config` (a NASConfig)."""
    return Objective.from_config(config).score(result)


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (size, accuracy) pairs: whether each is on the Pareto front, i.e. no other point
    is at most as large and at least as accurate, and strictly better in one of the two.
    Equal points are all on the front."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    on_front = [False] * len(points)
    best_acc, best_size = -math.inf, None
    for i in order:
        size, acc = points[i]
        if acc > best_acc or (acc == best_acc and size == best_size):
            on_front[i] = True
            best_acc, best_size = acc, size
    return on_front
