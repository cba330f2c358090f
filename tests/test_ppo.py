"""PPO: every common space, exact resume, save/load, videos, bad spaces."""

import signal

import gymnasium as gym
import numpy as np
import pytest
import torch

from gymlab import PPO
from gymlab.core.errors import UnsupportedSpaceError
from gymlab.core.session import Session
from tests.test_dqn import progress_without_timing

SMALL = {"num_envs": 4, "num_steps": 32, "hidden_sizes": (32,), "num_minibatches": 4,
         "update_epochs": 4}


def params(agent):
    return [p.detach().clone() for p in (*agent.actor.parameters(), *agent.critic.parameters(),
                                         agent.log_std)]


def test_dict_observations_and_multidiscrete_actions_learn(tmp_path, quick):
    agent = PPO("gymlab_test/DictMultiDiscrete-v0", seed=0, logdir=str(tmp_path), **quick,
                **{**SMALL, "learning_rate": 3e-3, "num_steps": 64, "ent_coef": 0.01})
    agent.learn(30_000)
    # random play scores 10 * 1/6 ~ 1.7 per episode
    assert agent.evaluate(episodes=10).mean >= 9.0
    assert agent.act(agent.envs.observation_space.sample()).shape == (2,)


def test_box_actions_are_clipped_gaussians(tmp_path):
    agent = PPO("Pendulum-v1", seed=0, logdir=None, progress=False, **SMALL,
                normalize_obs=True, normalize_reward=True)
    agent.learn(512)
    action = agent.act(np.array([1.0, 0.0, 0.0], np.float32))
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    assert agent.obs_norm.stats.count > 500  # observation statistics were gathered
    agent.save(tmp_path / "p.pt")
    loaded = PPO.load(tmp_path / "p.pt")
    obs = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    np.testing.assert_array_equal(agent.batch_policy()(obs), loaded.batch_policy()(obs))


def test_linear_activation_is_identity():
    agent = PPO("CartPole-v1", logdir=None, hidden_sizes=(32,), activation="linear")
    assert isinstance(agent.actor[1], torch.nn.Identity)


@pytest.mark.parametrize("space", [gym.spaces.Tuple([gym.spaces.Discrete(2)]),
                                   gym.spaces.Text(5)])
def test_unsupported_observation_spaces(space, monkeypatch):
    from tests.envs import NaNRewardEnv

    class Odd(NaNRewardEnv):
        def __init__(self, render_mode=None):
            super().__init__()
            self.observation_space = space

    gym.register("gymlab_test/Odd-v0", entry_point=Odd)
    try:
        with pytest.raises(UnsupportedSpaceError, match="not supported"):
            PPO("gymlab_test/Odd-v0", logdir=None)
    finally:
        del gym.registry["gymlab_test/Odd-v0"]


def test_resume_is_exact_with_normalisation(tmp_path, quick, monkeypatch):
    cfg = {**quick, **SMALL, "normalize_obs": True, "normalize_reward": True}
    total = 2_048
    straight = PPO("CartPole-v1", seed=3, logdir=str(tmp_path / "a"), **cfg).learn(total)

    on_step = Session.on_step

    def interrupt_at(session, step):
        on_step(session, step)
        if step == 128 * 7:
            session.interrupt.signal = signal.SIGINT

    monkeypatch.setattr(Session, "on_step", interrupt_at)
    first = PPO("CartPole-v1", seed=3, logdir=str(tmp_path / "b"), **cfg).learn(total)
    assert first.outcome == "interrupted"
    monkeypatch.setattr(Session, "on_step", on_step)
    torch.manual_seed(999)
    resumed = PPO.resume(first.run.path).learn()
    assert all(torch.equal(x, y) for x, y in zip(params(straight), params(resumed)))
    assert progress_without_timing(straight.run.path) == progress_without_timing(
        resumed.run.path)


def test_before_after_videos(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from tests.videos import count_frames

    agent = PPO("CartPole-v1", seed=0, logdir=str(tmp_path), progress=False,
                video="before-after", stop_reward=475, eval_every=2_000)
    agent.learn(60_000)
    assert agent.outcome == "solved"
    before = count_frames(agent.run.path / "videos" / "before.mp4")
    after = count_frames(agent.run.path / "videos" / "after.mp4")
    assert before < 100 < after  # the trained pole stays up far longer
