"""Flat float encodings of observation spaces, and the action spaces value-based agents use."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gymlab.core.errors import UnsupportedSpaceError


class ObservationEncoder:
    """Maps observations of a Box, Discrete, MultiDiscrete, MultiBinary or Dict space (of
    those, nested too) to flat float32 vectors: Box and MultiBinary flattened (any dtype),
    Discrete and MultiDiscrete one-hot, Dict per key in the space's key order, concatenated."""

    def __init__(self, space: gym.Space) -> None:
        self.space = space
        self.size = _encoded_size(space)

    def __call__(self, obs: Any) -> np.ndarray:
        """Encode one observation to shape [size]."""
        out = np.empty(self.size, dtype=np.float32)
        _encode_into(self.space, obs, out)
        return out


def _encoded_size(space: gym.Space) -> int:
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)):
        return int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(space.nvec.sum())
    if isinstance(space, gym.spaces.Dict):
        return sum(_encoded_size(sub) for sub in space.spaces.values())
    raise UnsupportedSpaceError(
        f"observation space {type(space).__name__} is not supported "
        "(Box, Discrete, MultiDiscrete, MultiBinary, or a Dict of those)"
    )


def _encode_into(space: gym.Space, obs: Any, out: np.ndarray) -> None:
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)):
        out[:] = np.asarray(obs, dtype=np.float32).reshape(-1)
    elif isinstance(space, gym.spaces.Discrete):
        out[:] = 0.0
        out[int(obs) - int(space.start)] = 1.0
    elif isinstance(space, gym.spaces.MultiDiscrete):
        out[:] = 0.0
        offsets = np.concatenate(([0], np.cumsum(space.nvec.reshape(-1))[:-1]))
        out[offsets + (np.asarray(obs).reshape(-1) - space.start.reshape(-1))] = 1.0
    else:  # Dict
        start = 0
        for key, sub in space.spaces.items():
            size = _encoded_size(sub)
            _encode_into(sub, obs[key], out[start : start + size])
            start += size


def discrete_branches(space: gym.Space, algo: str) -> tuple[int, ...]:
    """The number of choices of each action dimension: (n,) for Discrete, nvec for
    MultiDiscrete, (2, ..., 2) for MultiBinary. Other spaces get a clear error."""
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise UnsupportedSpaceError(f"{algo} needs Discrete actions starting at 0")
        return (int(space.n),)
    if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1:
        if np.any(space.start != 0):
            raise UnsupportedSpaceError(f"{algo} needs MultiDiscrete actions starting at 0")
        return tuple(int(n) for n in space.nvec)
    if isinstance(space, gym.spaces.MultiBinary) and len(space.shape) == 1:
        return (2,) * int(space.n)
    raise UnsupportedSpaceError(
        f"{algo} needs a Discrete or MultiDiscrete (or MultiBinary) action space, got {space} "
        "(for continuous actions use an algorithm for Box actions such as PPO)"
    )
