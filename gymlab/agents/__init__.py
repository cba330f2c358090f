"""The reinforcement-learning agents: DQN, PPO, neuroevolution (GA, ES) and MAML."""

from gymlab.registry import ALGORITHMS, algorithm  # noqa: F401  (until the CLI reads the registry)
