"""Learning tests: fixed seeds, real thresholds."""

import pytest

from gymlab import DQN

pytestmark = pytest.mark.learning


def test_dqn_solves_cartpole_with_its_defaults(tmp_path):
    # the protocol of benchmarks/cartpole_dqn.py: first evaluation (10 greedy episodes, every
    # 1,000 steps) with mean >= 475; seed 0 solves at 14k steps on this machine
    agent = DQN("CartPole-v1", seed=0, logdir=str(tmp_path), progress=False).learn()
    assert agent.outcome == "solved", agent.session_state
    assert agent.step <= 30_000
    assert agent.evaluate(episodes=10).mean >= 400  # fresh episodes, not the stopping ones
