"""Evolution strategies over MLP weights: OpenAI-ES (Salimans et al., 2017) and SNES
(Schaul et al., 2011). Both search a Gaussian around a mean network; the mean is the network
that acts, is evaluated and is saved.

OpenAI-ES: antithetic pairs theta +- sigma * eps, fitness replaced by centered ranks in
[-0.5, 0.5], the gradient estimate g = sum_i F_i eps_i / (n sigma) followed by Adam (ascent)
with weight decay (the paper's L2 coefficient). SNES: one standard deviation per parameter,
adapted multiplicatively from the same samples, with the NES rank utilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from gymlab.agents.evolution.agent import EvolutionAgent, EvolutionConfig, as_array, tie_averaged
from gymlab.core.config import require


@dataclass(frozen=True)
class ESConfig(EvolutionConfig):
    """Evolution strategy hyperparameters (names as in the papers)."""

    strategy: Literal["openai", "snes"] = "openai"
    """openai: OpenAI-ES with Adam; snes: separable natural evolution strategy."""
    population: int = 64
    """Networks per generation (even with antithetic sampling)."""
    episodes: int = 1
    """Episodes per network and generation; fitness is their mean return. Every network of a
    generation plays the same start states."""
    init_std: float = 0.1
    """The initial mean's weights are N(0, init_std^2), biases zero (small, so that sigma's
    noise changes what the network does)."""
    sigma: float = 0.1
    """Standard deviation of the search distribution (snes: its initial value, per
    parameter)."""
    learning_rate: float | None = None
    """Step size of the mean (none: 0.03 for openai's Adam, 1.0 for snes as in the paper)."""
    sigma_learning_rate: float | None = None
    """snes: step size of the log standard deviations (none: (3 + ln d) / (5 sqrt d))."""
    antithetic: bool = True
    """Mirrored sampling: every noise vector eps is evaluated as +eps and -eps."""
    centered_ranks: bool = True
    """openai: replace fitness by its rank scaled to [-0.5, 0.5] (ties share their rank)."""
    weight_decay: float = 0.005
    """openai: L2 coefficient pulling the mean towards zero."""
    adam_beta1: float = 0.9
    """openai: Adam's first-moment decay."""
    adam_beta2: float = 0.999
    """openai: Adam's second-moment decay."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.sigma > 0, f"sigma must be positive, got {self.sigma}")
        require(not self.antithetic or self.population % 2 == 0,
                f"population must be even with antithetic sampling, got {self.population}")
        for name in ("learning_rate", "sigma_learning_rate"):
            value = getattr(self, name)
            require(value is None or value > 0, f"{name} must be positive, got {value}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("adam_beta1", "adam_beta2"):
            require(0 <= getattr(self, name) < 1, f"{name} must be in [0, 1)")


def centered_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5] (the worst -0.5), equal fitness sharing its mean rank."""
    n = len(fitness)
    return tie_averaged(fitness, np.arange(n) / max(n - 1, 1) - 0.5)


class Adam:
    """Adam (Kingma & Ba, 2015) as an ascent step on a parameter vector."""

    def __init__(self, size: int, learning_rate: float, beta1: float, beta2: float,
                 epsilon: float = 1e-8) -> None:
        self.lr, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.m, self.v, self.t = np.zeros(size), np.zeros(size), 0

    def step(self, gradient: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * gradient
        self.v = self.beta2 * self.v + (1 - self.beta2) * gradient**2
        a = self.lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        return a * self.m / (np.sqrt(self.v) + self.epsilon)


class _Gaussian:
    """Sampling shared by both strategies: noise [n, D], mirrored when antithetic."""

    def __init__(self, cfg: ESConfig, mean: np.ndarray, rng: np.random.Generator) -> None:
        self.cfg, self.rng, self.mean = cfg, rng, mean
        self.noise = np.zeros((0, mean.size))

    def _sample(self) -> np.ndarray:
        cfg = self.cfg
        half = cfg.population // 2 if cfg.antithetic else cfg.population
        eps = self.rng.standard_normal((half, self.mean.size))
        self.noise = np.concatenate([eps, -eps]) if cfg.antithetic else eps
        return self.noise

    def best(self) -> np.ndarray:
        return self.mean.copy()


class OpenAIES(_Gaussian):
    def __init__(self, cfg: ESConfig, mean: np.ndarray, rng: np.random.Generator) -> None:
        super().__init__(cfg, mean, rng)
        self.sigma = cfg.sigma
        self.adam = Adam(mean.size, cfg.learning_rate or 0.03, cfg.adam_beta1, cfg.adam_beta2)
        self.grad_norm = 0.0

    def ask(self) -> np.ndarray:
        return self.mean + self.sigma * self._sample()

    def tell(self, fitness: np.ndarray) -> None:
        cfg = self.cfg
        f = centered_ranks(fitness) if cfg.centered_ranks else fitness
        grad = f @ self.noise / (len(f) * self.sigma)
        self.grad_norm = float(np.linalg.norm(grad))
        self.mean = self.mean + self.adam.step(grad - cfg.weight_decay * self.mean)

    def scalars(self) -> dict[str, float]:
        return {"evolution/grad_norm": self.grad_norm,
                "evolution/mean_norm": float(np.linalg.norm(self.mean))}

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "noise": self.noise.copy(), "m": self.adam.m.copy(),
                "v": self.adam.v.copy(), "t": self.adam.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.noise = as_array(state["mean"]), as_array(state["noise"])
        self.adam.m, self.adam.v = as_array(state["m"]), as_array(state["v"])
        self.adam.t = int(state["t"])


class SNES(_Gaussian):
    def __init__(self, cfg: ESConfig, mean: np.ndarray, rng: np.random.Generator) -> None:
        super().__init__(cfg, mean, rng)
        d, n = mean.size, cfg.population
        self.std = np.full(d, cfg.sigma)
        self.lr_mean = cfg.learning_rate or 1.0
        self.lr_std = cfg.sigma_learning_rate or (3 + math.log(d)) / (5 * math.sqrt(d))
        # utilities of ranks 0 (worst) .. n-1 (best): max(0, log(n/2 + 1) - log k) for the
        # k-th best, normalised to sum 1, minus 1/n
        k = np.arange(n, 0, -1)
        u = np.maximum(0.0, math.log(n / 2 + 1) - np.log(k))
        self.utilities = u / u.sum() - 1.0 / n

    def ask(self) -> np.ndarray:
        return self.mean + self.std * self._sample()

    def tell(self, fitness: np.ndarray) -> None:
        u = tie_averaged(fitness, self.utilities)
        z = self.noise
        self.mean = self.mean + self.lr_mean * self.std * (u @ z)
        self.std = self.std * np.exp(0.5 * self.lr_std * (u @ (z * z - 1.0)))

    def scalars(self) -> dict[str, float]:
        return {"evolution/sigma_mean": float(self.std.mean()),
                "evolution/mean_norm": float(np.linalg.norm(self.mean))}

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "std": self.std.copy(), "noise": self.noise.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.std = as_array(state["mean"]), as_array(state["std"])
        self.noise = as_array(state["noise"])


class ES(EvolutionAgent):
    """An evolution strategy evolving MLP policies (Discrete or Box actions).

    >>> agent = ES("CartPole-v1", strategy="snes").learn()
    >>> agent.act(obs)
    """

    algo = "es"
    Config = ESConfig
    config: ESConfig
    TUNED: ClassVar[dict[str, dict[str, Any]]] = {
        # tuned for time to solve: SNES from a wide search distribution
        # (benchmarks/neuroevolution.py compares it with OpenAI-ES)
        "CartPole-v1": {"strategy": "snes", "sigma": 1.0},
    }
    """Tuned values per environment."""

    def _make_strategy(self) -> OpenAIES | SNES:
        mean = self.spec.init(self.rng, 1, self.config.init_std)[0]
        cls = OpenAIES if self.config.strategy == "openai" else SNES
        return cls(self.config, mean, self.rng)
