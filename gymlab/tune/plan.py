"""A validated search: what every trial gets and what varies (made by validate.check_space)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gymlab.tune.space import Grid, Spec


@dataclass
class Plan:
    """A validated search: what every trial gets (`fixed`), what varies (`space`)."""

    algo: str
    env: str
    space: dict[str, Spec]
    fixed: dict[str, Any]
    metric: str
    mode: str
    samples: int
    seed: int
    max_steps: int
    eval_every: int
    search: str
    scheduler: str

    @property
    def grid_size(self) -> int:
        return math.prod(len(s.values) for s in self.space.values() if isinstance(s, Grid))

    @property
    def trials(self) -> int:
        return self.grid_size * self.samples

    @property
    def seeds_vary(self) -> bool:
        """Seeds seed .. seed+samples-1 are a hidden grid (random search, several samples)."""
        return self.search == "random" and self.samples > 1 and "seed" not in self.space
