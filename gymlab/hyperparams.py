"""Tuned defaults per algorithm and environment, in one table (as RL-Zoo keeps them).

A value here sits between the config dataclass's default and what the user passes. Keys are
fields of RunConfig or of the algorithm's config. Entries marked "zoo" are RL-Baselines3-Zoo's
tuned values (for DQN its gradient_steps=-1 written out as train_freq; for PPO its batch_size
as num_minibatches = num_envs * num_steps / batch_size).
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
    "ppo": {
        "CartPole-v1": {  # gymlab's own tuning for time to solve (benchmarks/cartpole_ppo.py)
            "total_steps": 200_000, "stop_reward": 475.0,
            "num_envs": 16, "num_steps": 64, "num_minibatches": 4, "update_epochs": 2,
            "learning_rate": 2e-3, "gamma": 0.995, "gae_lambda": 0.95, "clip_vloss": False,
            "normalize_obs": True, "normalize_reward": True,
        },
        # Below, RL-Zoo's PPO values: its batch_size 64 written as num_minibatches, a constant
        # learning rate as anneal_lr False, SB3's unclipped value loss as clip_vloss False
        "Acrobot-v1": {
            "total_steps": 200_000, "stop_reward": -100.0,
            "num_envs": 16, "num_steps": 256, "num_minibatches": 64, "update_epochs": 4,
            "learning_rate": 3e-4, "anneal_lr": False, "gamma": 0.99, "gae_lambda": 0.94,
            "clip_vloss": False, "normalize_obs": True, "normalize_reward": True,
        },
        "Pendulum-v1": {  # no gSDE in gymlab: gamma 0.95 (zoo 0.9) and lr annealed instead
            "total_steps": 200_000, "stop_reward": -200.0,
            "num_envs": 4, "num_steps": 1024, "num_minibatches": 64, "update_epochs": 10,
            "learning_rate": 1e-3, "gamma": 0.95, "gae_lambda": 0.95, "clip_vloss": False,
        },
        "LunarLander-v3": {  # the zoo's LunarLander-v2 entry
            "total_steps": 1_000_000, "stop_reward": 200.0,
            "num_envs": 16, "num_steps": 1024, "num_minibatches": 256, "update_epochs": 4,
            "learning_rate": 3e-4, "anneal_lr": False, "gamma": 0.999, "gae_lambda": 0.98,
            "ent_coef": 0.01, "clip_vloss": False,
        },
    },
}
TUNED["es"] = {
    # gymlab's own tuning for time to solve (benchmarks/neuroevolution.py): SNES from a wide
    # search distribution solved 8/8 seeds in 0.21 CPU-s median here, OpenAI-ES (Adam 0.03)
    # 8/8 in 0.51 CPU-s
    "CartPole-v1": {"strategy": "snes", "sigma": 1.0},
}


def tuned(algo: str, env_id: str) -> dict[str, Any]:
    return dict(TUNED.get(algo, {}).get(env_id, {}))
