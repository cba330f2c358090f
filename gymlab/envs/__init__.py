"""gymnasium environments of gymlab, registered under the `gymlab/` namespace."""

import gymnasium as gym

if "gymlab/NAS-v0" not in gym.registry:
    gym.register("gymlab/NAS-v0", entry_point="gymlab.nas.env:NASEnv",
                 max_episode_steps=300)

if "gymlab/NASLayerwise-v0" not in gym.registry:
    gym.register("gymlab/NASLayerwise-v0", entry_point="gymlab.nas.layerwise:NASLayerwiseEnv",
                 max_episode_steps=50)

if "gymlab/Navigation2D-v0" not in gym.registry:
    gym.register("gymlab/Navigation2D-v0", entry_point="gymlab.envs.navigation:Navigation2DEnv",
                 max_episode_steps=100)

# MuJoCo task families for meta-RL (the `mujoco` extra). Registering names the entry point only:
# mujoco is imported when one of them is made, so `import gymlab.envs` works without the extra.
# 200 steps is the MAML paper's horizon; gym.make(id, max_episode_steps=100) gives
# pytorch-maml-rl's.
for _name in ("HalfCheetahVel", "HalfCheetahDir", "AntVel", "AntDir", "AntPos"):
    if f"gymlab/{_name}-v0" not in gym.registry:
        gym.register(f"gymlab/{_name}-v0", entry_point=f"gymlab.envs.locomotion:{_name}",
                     max_episode_steps=200)
del _name
