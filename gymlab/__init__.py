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
    from gymlab.agents.evolution.es import ES
    from gymlab.agents.evolution.ga import GA
    from gymlab.agents.maml.trainer import MAML
    from gymlab.agents.ppo import PPO
    from gymlab.nas.search import NASSearch

_LAZY = {"DQN": "dqn", "PPO": "ppo", "GA": "ga", "ES": "es", "MAML": "maml", "NASSearch": "nas"}
__all__ = ["DQN", "PPO", "GA", "ES", "MAML", "NASSearch", "__version__"]


def __getattr__(name: str) -> Any:
    # Algorithms import torch; loading them lazily keeps `import gymlab` and `gymlab --help` fast.
    if name in _LAZY:
        from gymlab.registry import algorithm

        return algorithm(_LAZY[name])
    raise AttributeError(f"module 'gymlab' has no attribute {name!r}")
