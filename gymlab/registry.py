"""Every algorithm of gymlab by name; a module is imported only when its algorithm is used."""

from __future__ import annotations

from typing import Any

ALGORITHMS: dict[str, tuple[str, str]] = {
    "dqn": ("gymlab.agents.dqn:DQN", "Deep Q-Network (Discrete and MultiDiscrete actions)"),
    "ppo": ("gymlab.agents.ppo:PPO", "Proximal Policy Optimization (Discrete, MultiDiscrete, Box)"),
    "ga": ("gymlab.agents.evolution.ga:GA",
           "Genetic algorithm evolving MLP weights (Discrete, Box)"),
    "es": ("gymlab.agents.evolution.es:ES",
           "Evolution strategies: OpenAI-ES or SNES (Discrete, Box)"),
    "maml": ("gymlab.agents.maml.trainer:MAML",
             "MAML-TRPO meta-RL on task families (2D navigation, MuJoCo)"),
    "nas": ("gymlab.nas.search:NASSearch",
            "Network search: an agent designs CNNs on a dataset"),
}
"""name -> (import path, one-line description)."""


def algorithm(name: str) -> Any:
    """The Algorithm subclass registered under `name`."""
    import importlib

    path = ALGORITHMS[name][0]
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)
