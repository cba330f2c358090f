"""MLP policies as flat parameter vectors, applied to many networks at once with numpy.

A population is a [P, D] array: row i holds network i's weights and biases, layer by layer
(weight [in, out] row-major, then bias [out]). The forward pass of a batch of slots, each
with its own network, is one stacked matrix product per layer: [B, 1, in] @ [B, in, out].

numpy, not torch: on networks this small numpy's stacked matmul is the cheaper call on one
thread (benchmarks/neuroevolution.py), and it gives every slot the same bits whatever the
batch around it (tested), which makes fitness independent of compaction and of how the
population is split over workers. This module imports no torch: worker processes start in
a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from gymlab.core.errors import UnsupportedSpaceError

EvoActivation = Literal["relu", "tanh", "elu", "silu", "linear"]


def _activate(name: str, x: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(x, 0.0, out=x)
    if name == "tanh":
        return np.tanh(x, out=x)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    return x


@dataclass(frozen=True)
class ActionHead:
    """Network outputs -> environment actions: argmax for Discrete, tanh scaled to the bounds
    for Box."""

    kind: Literal["discrete", "box"]
    size: int
    """Network outputs."""
    start: int = 0
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    shape: tuple[int, ...] = ()

    @classmethod
    def for_space(cls, space: gym.Space, algo: str) -> ActionHead:
        if isinstance(space, gym.spaces.Discrete):
            return cls("discrete", int(space.n), start=int(space.start))
        if isinstance(space, gym.spaces.Box):
            low = space.low.reshape(-1).astype(np.float64)
            high = space.high.reshape(-1).astype(np.float64)
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise UnsupportedSpaceError(
                    f"{algo} needs bounded Box actions (it scales tanh to the bounds), got {space}")
            return cls("box", low.size, low=low, high=high, shape=space.shape)
        raise UnsupportedSpaceError(
            f"{algo} needs a Discrete or Box action space, got {space}")

    def __call__(self, out: np.ndarray) -> np.ndarray:
        """Actions for outputs [B, size]."""
        if self.kind == "discrete":
            if self.size == 2:  # argmax of two: 1 only when strictly greater, as np.argmax
                actions = (out[:, 1] > out[:, 0]).astype(np.int64)
            else:
                actions = out.argmax(1)
            return actions + self.start if self.start else actions
        assert self.low is not None and self.high is not None
        scaled = self.low + (np.tanh(out) + 1.0) * 0.5 * (self.high - self.low)
        return scaled.reshape((len(out), *self.shape)).astype(np.float32)


@dataclass(frozen=True)
class MLPSpec:
    """The architecture: layer sizes (observation size first, action outputs last)."""

    sizes: tuple[int, ...]
    activation: str

    @property
    def layers(self) -> list[tuple[int, int, int]]:
        """(offset in the flat vector, in, out) of each layer."""
        out, offset = [], 0
        for n_in, n_out in zip(self.sizes, self.sizes[1:]):
            out.append((offset, n_in, n_out))
            offset += n_in * n_out + n_out
        return out

    @property
    def n_params(self) -> int:
        return sum(n_in * n_out + n_out for _, n_in, n_out in self.layers)

    def weight_mask(self) -> np.ndarray:
        """True at weights, False at biases, over the flat vector."""
        mask = np.zeros(self.n_params, dtype=bool)
        for offset, n_in, n_out in self.layers:
            mask[offset : offset + n_in * n_out] = True
        return mask

    def init(self, rng: np.random.Generator, n: int, init_std: float) -> np.ndarray:
        """[n, D] networks: weights N(0, init_std^2), biases zero (the tutorial's start)."""
        params = np.zeros((n, self.n_params))
        mask = self.weight_mask()
        params[:, mask] = rng.standard_normal((n, int(mask.sum()))) * init_std
        return params

    def unflatten(self, params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer, views W [N, in, out] and b [N, 1, out] of params [N, D]."""
        n = len(params)
        return [(params[:, o : o + i * k].reshape(n, i, k),
                 params[:, o + i * k : o + i * k + k].reshape(n, 1, k))
                for o, i, k in self.layers]

    def forward(self, layers: list[tuple[np.ndarray, np.ndarray]], obs: np.ndarray) -> np.ndarray:
        """Outputs [B, out] of slot b's network (W[b] or a shared W with a leading 1) applied
        to obs[b]: one stacked product per layer."""
        x = obs[:, None, :]
        last = len(layers) - 1
        for k, (w, b) in enumerate(layers):
            x = np.matmul(x, w)
            x += b
            if k < last:
                x = _activate(self.activation, x)
        return x[:, 0, :]


class ObsNorm:
    """Frozen observation normalisation for acting: clip((obs - mean) / sqrt(var + 1e-8)),
    as gymlab.core.normalize.ObsNormalizer computes it, without its running update (the
    statistics change only between generations)."""

    def __init__(self, mean: np.ndarray, var: np.ndarray, clip: float = 10.0) -> None:
        self.mean, self.std, self.clip = mean, np.sqrt(var + 1e-8), clip

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        out = (obs - self.mean) / self.std
        return np.clip(out, -self.clip, self.clip, out=out).astype(np.float32)


class PopulationPolicy:
    """Slot b acts with network `individual[b]` of `params`. Compaction (`keep`) drops the
    weights of finished slots along with their observations."""

    def __init__(self, spec: MLPSpec, head: ActionHead, params: np.ndarray,
                 individual: np.ndarray, norm: ObsNorm | None = None) -> None:
        self.spec, self.head, self.norm = spec, head, norm
        self.layers = [(w[individual], b[individual]) for w, b in spec.unflatten(params)]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = self.norm(obs) if self.norm is not None else obs
        return self.head(self.spec.forward(self.layers, x))

    def keep(self, mask: np.ndarray) -> None:
        self.layers = [(w[mask], b[mask]) for w, b in self.layers]


class SharedPolicy:
    """One network for every slot (evaluation of the search's best or mean)."""

    def __init__(self, spec: MLPSpec, head: ActionHead, params: np.ndarray,
                 norm: ObsNorm | None = None) -> None:
        self.spec, self.head, self.norm, self.params = spec, head, norm, params
        self.layers = spec.unflatten(params[None])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = self.norm(obs) if self.norm is not None else obs
        return self.head(self.spec.forward(self.layers, x))

    def keep(self, mask: np.ndarray) -> None:
        pass

    def solo(self, j: int) -> Callable[[np.ndarray], Any]:
        """The action function for one observation: the batched code with a batch of one
        (the same bits as in a batch)."""
        def act(obs: np.ndarray) -> Any:
            x = self.norm(obs[None]) if self.norm is not None else obs[None]
            return self.head(self.spec.forward(self.layers, x))[0]

        return act
