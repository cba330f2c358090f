"""Search strategies that propose architectures themselves (ask/tell, as evosax)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from gymlab.core.seeding import generator_state, set_generator_state


class RandomSearch:
    """Layer ids drawn uniformly and independently."""

    def __init__(self, n_choices: int, layers: int, seed: int) -> None:
        self.n_choices, self.layers = n_choices, layers
        self.rng = np.random.default_rng(seed)

    def ask(self) -> list[int]:
        return self.rng.integers(0, self.n_choices, self.layers).tolist()

    def tell(self, ids: list[int], fitness: float) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"rng": generator_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_generator_state(self.rng, state["rng"])


class RegularizedEvolution(RandomSearch):
    """Aging evolution (Real et al., 2019): a queue of the `population_size` newest
    architectures; each child mutates one layer id of the fittest of `sample_size` random
    members, and the oldest member dies. The first `population_size` are random.

    With `distinct`, a proposal whose `key` (e.g. the space's canonical form) was proposed
    before is drawn again, up to `MAX_REDRAWS` times: a repeat costs budget and teaches
    nothing."""

    MAX_REDRAWS = 20

    def __init__(self, n_choices: int, layers: int, seed: int, population_size: int = 20,
                 sample_size: int = 5, distinct: bool = False,
                 key: Callable[[Sequence[int]], Hashable] = tuple) -> None:
        super().__init__(n_choices, layers, seed)
        self.sample_size = min(sample_size, population_size)
        self.population: deque[tuple[list[int], float]] = deque(maxlen=population_size)
        self.distinct, self.key = distinct, key
        self.proposed: set[Hashable] = set()

    def ask(self) -> list[int]:
        child = self._draw()
        for _ in range(self.MAX_REDRAWS if self.distinct else 0):
            if self.key(child) not in self.proposed:
                break
            child = self._draw()
        self.proposed.add(self.key(child))
        return child

    def _draw(self) -> list[int]:
        if len(self.population) < (self.population.maxlen or 0):
            return super().ask()
        picks = self.rng.choice(len(self.population), self.sample_size, replace=False)
        parent = max((self.population[i] for i in picks), key=lambda member: member[1])[0]
        child = list(parent)
        position = int(self.rng.integers(self.layers))
        # a different id at that position: the mutation always changes the architecture list
        child[position] = int((child[position] + self.rng.integers(1, self.n_choices))
                              % self.n_choices)
        return child

    def tell(self, ids: list[int], fitness: float) -> None:
        self.population.append((list(ids), fitness))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": [[ids, f] for ids, f in self.population]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population.clear()
        self.population.extend((list(ids), float(f)) for ids, f in state["population"])
