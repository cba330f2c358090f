"""gymlab: a reinforcement-learning lab on gymnasium and PyTorch.

Importing gymlab registers its environments (gymlab/NAS-v0, gymlab/Navigation2D-v0, ...) with
gymnasium, so `gym.make("gymlab/NAS-v0")` works after `import gymlab`. It does not import
torch: the algorithms load on first use (`gymlab.PPO`, `gymlab.registry.algorithm`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gymlab import envs as envs  # noqa: F401  registers the environments; imports no torch

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gymlab.agents.dqn import DQN
    from gymlab.agents.evolution import ES, GA
    from gymlab.agents.ppo import PPO

__all__ = ["DQN", "PPO", "GA", "ES", "__version__"]


def __getattr__(name: str) -> Any:
    # Agents import torch; loading them lazily keeps `import gymlab` and `gymlab --help` fast.
    if name in __all__[:-1]:
        from gymlab.registry import algorithm

        return algorithm(name.lower())
    raise AttributeError(f"module 'gymlab' has no attribute {name!r}")
