"""Small network builders shared by the agents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

Activation = Literal["relu", "tanh", "elu", "gelu", "silu", "linear"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "linear": nn.Identity,
}


def mlp(in_size: int, hidden_sizes: Sequence[int], activation: str, out_size: int) -> nn.Sequential:
    """Linear layers of `hidden_sizes` with `activation` between them, then a linear output."""
    layers: list[nn.Module] = []
    size = in_size
    for hidden in hidden_sizes:
        layers += [nn.Linear(size, hidden), ACTIVATIONS[activation]()]
        size = hidden
    layers.append(nn.Linear(size, out_size))
    return nn.Sequential(*layers)
