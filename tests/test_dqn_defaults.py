"""DQN's defaults learn an environment that has no tuned entry (benchmarks/dqn_defaults.py
chose them on other tasks)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from gymlab import DQN

ENV_ID = "gymlab_test/CartPoleDict-v1"


class DictObservation(gym.ObservationWrapper):
    """CartPole's observation as {"cart": (x, x_dot), "pole": (theta, theta_dot)}."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        box = env.observation_space
        self.observation_space = gym.spaces.Dict({
            "cart": gym.spaces.Box(box.low[:2], box.high[:2], dtype=np.float32),
            "pole": gym.spaces.Box(box.low[2:], box.high[2:], dtype=np.float32)})

    def observation(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {"cart": obs[:2], "pole": obs[2:]}


def make_dict_cartpole(render_mode: str | None = None) -> gym.Env:
    return DictObservation(CartPoleEnv(render_mode=render_mode))


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=make_dict_cartpole, max_episode_steps=500)


@pytest.mark.learning
def test_defaults_balance_a_dict_observation_cartpole():
    assert ENV_ID not in DQN.TUNED  # the dataclass defaults alone
    # the cap leaves room above the step at which this seed first reaches 400; the spread
    # over seeds is benchmarks/dqn_defaults.py's
    agent = DQN(ENV_ID, seed=1, logdir=None, progress=False, eval_every=5_000,
                stop_reward=400.0, total_steps=40_000).learn()
    assert agent.outcome == "solved", agent.session_state
    assert agent.evaluate(episodes=10).mean >= 400  # fresh episodes, not the stopping ones
