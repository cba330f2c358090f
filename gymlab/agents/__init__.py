"""One module per algorithm family, each with its config dataclass."""

ALGORITHMS: dict[str, tuple[str, str]] = {
    "dqn": ("gymlab.agents.dqn:DQN", "Deep Q-Network (Discrete and MultiDiscrete actions)"),
    "ppo": ("gymlab.agents.ppo:PPO", "Proximal Policy Optimization (Discrete, MultiDiscrete, Box)"),
    "ga": ("gymlab.agents.evolution:GA", "Genetic algorithm evolving MLP weights (Discrete, Box)"),
    "es": ("gymlab.agents.evolution:ES", "Evolution strategies: OpenAI-ES or SNES (Discrete, Box)"),
}
"""name -> (import path, one-line description); modules load only when used."""


def algorithm(name: str) -> type:
    """The agent class registered under `name`."""
    import importlib

    path = ALGORITHMS[name][0]
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)
