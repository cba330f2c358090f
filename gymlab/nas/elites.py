"""Edit actions for `gymlab/NAS-v0` (`edit_elites=k`): the agent changes a good network.

Proposing all layer ids at once with independent categoricals, PPO learns slowly in a
100-network budget: it must find a good list by chance before its policy can concentrate
on it, and what it learns about one position says nothing about the ids next to it. With
edit actions the agent starts from what already worked: it picks one of the `k` best
networks scored so far (or a fresh random one), a position and the id to put there. A
uniform policy over these actions is already a local search around the elites; PPO learns
which elites, positions and ids pay (the observation is the elites and their scores).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np


class Elites:
    """The `size` best distinct networks scored so far, best first, and how an edit action
    (parent rank, position, id) turns into a network's layer ids."""

    def __init__(self, size: int, layers: int, n_choices: int,
                 key: Callable[[Sequence[int]], Hashable] = tuple) -> None:
        if size <= 0:
            raise ValueError(f"edit_elites must be positive, got {size}")
        self.size, self.layers, self.n_choices, self.key = size, layers, n_choices, key
        self.members: list[tuple[float, list[int]]] = []
        """(score, layer ids), best first; ties keep the earlier network first."""
        self._keys: set[Hashable] = set()

    @property
    def random_action(self) -> int:
        """The parent rank that asks for a fresh random network."""
        return self.size

    def nvec(self) -> list[int]:
        """The MultiDiscrete action: parent rank (or random), position, new id."""
        return [self.size + 1, self.layers, self.n_choices]

    def clear(self) -> None:
        self.members.clear()
        self._keys.clear()

    def add(self, ids: Sequence[int], score: float) -> None:
        """Keep a scored network if it is among the best `size` distinct ones."""
        key = self.key(ids)
        if key in self._keys:
            return
        rank = next((i for i, (s, _) in enumerate(self.members) if score > s), len(self.members))
        if rank >= self.size:
            return
        self.members.insert(rank, (float(score), list(ids)))
        self._keys.add(key)
        if len(self.members) > self.size:
            self._keys.discard(self.key(self.members.pop()[1]))

    def decode(self, action: Sequence[int], rng: np.random.Generator) -> list[int]:
        """The layer ids an edit action proposes: the parent with one id set, or a random
        network when the rank is `random_action` or no network of that rank exists yet."""
        parent, position, new_id = (int(a) for a in action)
        if parent >= len(self.members):
            return rng.integers(0, self.n_choices, self.layers).tolist()
        child = list(self.members[parent][1])
        child[position] = new_id
        return child

    def observation(self, empty: float) -> tuple[np.ndarray, np.ndarray]:
        """[size, layers] layer ids (rows without a network hold `empty`) and [size] scores."""
        ids = np.full((self.size, self.layers), empty, np.float32)
        scores = np.zeros(self.size, np.float32)
        for i, (score, member) in enumerate(self.members):
            ids[i], scores[i] = member, score
        return ids, scores
