"""Tuned defaults per algorithm and environment, in one table (as RL-Zoo keeps them).

A value here sits between the config dataclass's default and what the user passes. Keys are
fields of RunConfig or of the algorithm's config. Entries marked "zoo" are RL-Baselines3-Zoo's
tuned DQN values (its gradient_steps=-1 written out as train_freq).
"""

from __future__ import annotations

from typing import Any

TUNED: dict[str, dict[str, dict[str, Any]]] = {
    "dqn": {
        "CartPole-v1": {  # gymlab's own tuning for time to solve (benchmarks/cartpole_dqn.py)
            "total_steps": 100_000, "stop_reward": 475.0,
            "learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000,
            "learning_starts": 1_000, "gamma": 0.99, "target_update_interval": 100,
            "train_freq": 4, "gradient_steps": 1, "exploration_fraction": 0.05,
            "exploration_final_eps": 0.04, "double_q": True, "hidden_sizes": (128, 128),
        },
        "Acrobot-v1": {  # zoo
            "total_steps": 100_000, "stop_reward": -100.0,
            "learning_rate": 6.3e-4, "batch_size": 128, "buffer_size": 50_000,
            "learning_starts": 0, "gamma": 0.99, "target_update_interval": 250,
            "train_freq": 4, "gradient_steps": 4, "exploration_fraction": 0.12,
            "exploration_final_eps": 0.1, "hidden_sizes": (256, 256),
        },
        "MountainCar-v0": {  # zoo
            "total_steps": 120_000, "stop_reward": -110.0,
            "learning_rate": 4e-3, "batch_size": 128, "buffer_size": 10_000,
            "learning_starts": 1_000, "gamma": 0.98, "target_update_interval": 600,
            "train_freq": 16, "gradient_steps": 8, "exploration_fraction": 0.2,
            "exploration_final_eps": 0.07, "hidden_sizes": (256, 256),
        },
        "LunarLander-v3": {  # zoo
            "total_steps": 100_000, "stop_reward": 200.0,
            "learning_rate": 6.3e-4, "batch_size": 128, "buffer_size": 50_000,
            "learning_starts": 0, "gamma": 0.99, "target_update_interval": 250,
            "train_freq": 4, "gradient_steps": 4, "exploration_fraction": 0.12,
            "exploration_final_eps": 0.1, "hidden_sizes": (256, 256),
        },
    },
}


def tuned(algo: str, env_id: str) -> dict[str, Any]:
    return dict(TUNED.get(algo, {}).get(env_id, {}))
