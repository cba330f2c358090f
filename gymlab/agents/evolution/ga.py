"""A genetic algorithm over MLP weights, forward passes only.

The defaults are the tutorial's: 64 networks (4, 16, 2) with weights N(0, 1) and zero biases,
fitness the mean return over 15 episodes, the best one kept (elitism, E = 1) and the other 63
its copies with N(0, 0.1^2) added to every parameter. Its "future work" as options: uniform or
one-point crossover between parents, multiplicative ("shift"), replacement and sign-flip
mutations each with a per-parameter rate, truncation or tournament selection, and elites kept
with their old fitness instead of re-evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gymlab.agents.evolution.agent import EvolutionAgent, EvolutionConfig, as_array
from gymlab.agents.evolution.policy import MLPSpec
from gymlab.core.config import require


@dataclass(frozen=True)
class GAConfig(EvolutionConfig):
    """Genetic algorithm hyperparameters (defaults: the tutorial's)."""

    elites: int = 1
    """The best E networks of a generation survive unchanged into the next."""
    reevaluate_elites: bool = True
    """Score the elites again each generation on its episodes (false: keep their fitness)."""
    selection: Literal["truncation", "tournament"] = "truncation"
    """How parents are drawn: uniformly from the best `truncation`, or the fittest of
    `tournament_size` networks drawn uniformly."""
    truncation: int | None = None
    """Truncation selection's pool of parents: the best this many (none: the elites)."""
    tournament_size: int = 3
    """Networks per tournament."""
    crossover: Literal["none", "uniform", "one-point"] = "none"
    """How a child mixes two parents: each parameter from either (uniform), or the first
    parent's parameters up to a random cut and the second's after it (one-point)."""
    crossover_rate: float = 0.5
    """Probability that a child is a crossover of two parents rather than a copy of one."""
    mutation_scale: float = 0.1
    """Standard deviation of the additive Gaussian mutation."""
    mutation_rate: float = 1.0
    """Probability that a parameter gets the additive mutation."""
    shift_scale: float = 0.1
    """Standard deviation of the multiplicative mutation w *= 1 + N(0, shift_scale^2)."""
    shift_rate: float = 0.0
    """Probability that a parameter gets the multiplicative (shift) mutation."""
    replace_rate: float = 0.0
    """Probability that a parameter is replaced by a fresh N(0, init_std^2) value."""
    flip_rate: float = 0.0
    """Probability that a parameter's sign is flipped."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 <= self.elites < self.population,
                f"elites must be in [0, population), got {self.elites} with population "
                f"{self.population}")
        require(self.truncation is None or 1 <= self.truncation <= self.population,
                f"truncation must be in [1, population], got {self.truncation}")
        require(1 <= self.tournament_size <= self.population,
                f"tournament_size must be in [1, population], got {self.tournament_size}")
        require(self.mutation_scale > 0,
                f"mutation_scale must be positive, got {self.mutation_scale}")
        require(self.shift_scale > 0, f"shift_scale must be positive, got {self.shift_scale}")
        for name in ("crossover_rate", "mutation_rate", "shift_rate", "replace_rate",
                     "flip_rate"):
            value = getattr(self, name)
            require(0 <= value <= 1, f"{name} must be in [0, 1], got {value}")


class GeneticAlgorithm:
    """ask() -> the networks to score; tell(fitness) -> their fitness; the next ask() breeds
    the next generation from the scored one."""

    def __init__(self, cfg: GAConfig, spec: MLPSpec, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        self.population = spec.init(rng, cfg.population, cfg.init_std)
        self.fitness = np.full(cfg.population, np.nan)
        self.asked = np.arange(cfg.population)

    def ask(self) -> np.ndarray:
        if not np.isnan(self.fitness).all():
            self._breed()
        return self.population[self.asked]

    def tell(self, fitness: np.ndarray) -> None:
        self.fitness[self.asked] = fitness

    def best(self) -> np.ndarray:
        if np.isnan(self.fitness).all():
            return self.population[0].copy()
        return self.population[int(np.nanargmax(self.fitness))].copy()

    def scalars(self) -> dict[str, float]:
        return {}

    def _breed(self) -> None:
        cfg, rng, n_params = self.cfg, self.rng, self.population.shape[1]
        rank = np.argsort(-self.fitness, kind="stable")  # best first
        elites = rank[: cfg.elites]
        n = cfg.population - cfg.elites
        children = self.population[self._select(n, rank)]
        if cfg.crossover != "none":
            other = self.population[self._select(n, rank)]
            crossed = rng.random(n) < cfg.crossover_rate
            if cfg.crossover == "uniform":
                take = rng.random((n, n_params)) < 0.5
            else:  # one-point: the second parent from a cut in 1 .. D-1 on
                cut = rng.integers(1, n_params, size=n)
                take = np.arange(n_params)[None, :] >= cut[:, None]
            children = np.where(crossed[:, None] & take, other, children)
        children = self._mutate(children)
        self.population = np.concatenate([self.population[elites], children])
        self.fitness = np.concatenate([self.fitness[elites], np.full(n, np.nan)])
        start = 0 if cfg.reevaluate_elites else cfg.elites
        self.asked = np.arange(start, cfg.population)

    def _select(self, n: int, rank: np.ndarray) -> np.ndarray:
        """Indices of n parents."""
        cfg = self.cfg
        if cfg.selection == "truncation":
            pool = cfg.truncation or max(cfg.elites, 1)
            return rank[self.rng.integers(0, pool, size=n)]
        contestants = self.rng.integers(0, cfg.population, size=(n, cfg.tournament_size))
        winners = np.argmax(self.fitness[contestants], axis=1)
        return contestants[np.arange(n), winners]

    def _mutate(self, x: np.ndarray) -> np.ndarray:
        cfg, rng = self.cfg, self.rng

        def where(rate: float) -> np.ndarray | bool:
            return True if rate == 1 else rng.random(x.shape) < rate

        if cfg.mutation_rate > 0:
            x = x + np.where(where(cfg.mutation_rate),
                             cfg.mutation_scale * rng.standard_normal(x.shape), 0.0)
        if cfg.shift_rate > 0:
            x = np.where(where(cfg.shift_rate),
                         x * (1.0 + cfg.shift_scale * rng.standard_normal(x.shape)), x)
        if cfg.replace_rate > 0:
            x = np.where(where(cfg.replace_rate),
                         cfg.init_std * rng.standard_normal(x.shape), x)
        if cfg.flip_rate > 0:
            x = np.where(where(cfg.flip_rate), -x, x)
        return x

    def state_dict(self) -> dict[str, Any]:
        return {"population": self.population.copy(), "fitness": self.fitness.copy(),
                "asked": self.asked.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.population = as_array(state["population"])
        self.fitness = as_array(state["fitness"])
        self.asked = as_array(state["asked"])


class GA(EvolutionAgent):
    """A genetic algorithm evolving MLP policies (Discrete or Box actions).

    >>> agent = GA("CartPole-v1", generations=5, max_episode_steps=10_000).learn()
    >>> agent.act(obs)
    """

    algo = "ga"
    Config = GAConfig
    config: GAConfig

    def _make_strategy(self) -> GeneticAlgorithm:
        return GeneticAlgorithm(self.config, self.spec, self.rng)
