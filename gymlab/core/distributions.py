"""Action distributions for policy-gradient agents, one per kind of action space.

Each maps the actor network's output to sampled actions, their log-probabilities and
entropies, summed over action dimensions. They are small hand-written classes rather than
torch.distributions objects: on tiny CPU batches the argument checks and object creation of
the latter cost more than the maths.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from gymlab.core.errors import UnsupportedSpaceError


class Categoricals:
    """Independent categoricals, one per action dimension: Discrete (one) or MultiDiscrete."""

    def __init__(self, branches: tuple[int, ...]) -> None:
        self.branches = branches
        self.n_outputs = sum(branches)

    def _heads(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (logits,) if len(self.branches) == 1 else logits.split(self.branches, -1)

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits)
        return torch.stack([(h - torch.empty_like(h).exponential_().log()).argmax(-1)
                            for h in self._heads(logits)], -1)

    def mode(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.stack([h.argmax(-1) for h in self._heads(logits)], -1)

    def log_prob(self, logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return sum(h.log_softmax(-1).gather(-1, actions[:, i : i + 1]).squeeze(-1)
                   for i, h in enumerate(self._heads(logits)))  # type: ignore[return-value]

    def entropy(self, logits: torch.Tensor) -> torch.Tensor:
        total = 0
        for h in self._heads(logits):
            logp = h.log_softmax(-1)
            total = total - (logp.exp() * logp).sum(-1)
        return total  # type: ignore[return-value]


class DiagGaussian:
    """A diagonal Gaussian with a state-independent, learned log standard deviation."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.n_outputs = size

    def sample(self, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        return mean + log_std.exp() * torch.randn_like(mean)

    def mode(self, mean: torch.Tensor, log_std: torch.Tensor | None = None) -> torch.Tensor:
        return mean

    def log_prob(self, mean: torch.Tensor, log_std: torch.Tensor,
                 actions: torch.Tensor) -> torch.Tensor:
        z = (actions - mean) * (-log_std).exp()
        return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self, log_std: torch.Tensor, batch: int) -> torch.Tensor:
        return (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum().expand(batch)


def action_distribution(space: gym.Space, algo: str) -> Categoricals | DiagGaussian:
    if isinstance(space, gym.spaces.Discrete) and int(space.start) == 0:
        return Categoricals((int(space.n),))
    if (isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1
            and not np.any(space.start != 0)):
        return Categoricals(tuple(int(n) for n in space.nvec))
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return DiagGaussian(int(np.prod(space.shape)))
    raise UnsupportedSpaceError(
        f"{algo} supports Discrete, MultiDiscrete and Box actions, got {space}")


def orthogonal_init(module: nn.Module, gain: float) -> nn.Module:
    """Orthogonal weights and zero biases (the init PPO implementations rely on)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return module
