"""gymnasium environments of gymlab, registered under the `gymlab/` namespace."""

import gymnasium as gym

if "gymlab/NAS-v0" not in gym.registry:
    gym.register("gymlab/NAS-v0", entry_point="gymlab.envs.nas.env:NASEnv",
                 max_episode_steps=300)

if "gymlab/NASLayerwise-v0" not in gym.registry:
    gym.register("gymlab/NASLayerwise-v0", entry_point="gymlab.envs.nas.layerwise:NASLayerwiseEnv",
                 max_episode_steps=50)

if "gymlab/Navigation2D-v0" not in gym.registry:
    gym.register("gymlab/Navigation2D-v0", entry_point="gymlab.envs.navigation:Navigation2DEnv",
                 max_episode_steps=100)
