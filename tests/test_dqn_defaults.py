"""DQN's defaults learn an environment that has no tuned entry (benchmarks/dqn_defaults.py
chose them on other tasks)."""

import pytest

from gymlab import DQN

ENV_ID = "gymlab_test/CartPoleDict-v1"  # registered by tests/envs.py


@pytest.mark.learning
def test_defaults_balance_a_dict_observation_cartpole():
    assert ENV_ID not in DQN.TUNED  # the dataclass defaults alone
    # the cap leaves room above the step at which this seed first reaches 400; the spread
    # over seeds is benchmarks/dqn_defaults.py's
    agent = DQN(ENV_ID, seed=1, logdir=None, progress=False, eval_every=5_000,
                stop_reward=400.0, total_steps=40_000).learn()
    assert agent.outcome == "solved", agent.session_state
    assert agent.evaluate(episodes=10).mean >= 400  # fresh episodes, not the stopping ones
