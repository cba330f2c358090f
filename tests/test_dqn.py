"""DQN: spaces, save/load, determinism, exact resume, non-finite losses."""

import json
import math
import signal

import numpy as np
import pytest
import torch

from gymlab import DQN
from gymlab.core.errors import CheckpointError, UnsupportedSpaceError
from gymlab.core.logger import read_progress
from gymlab.core.session import Session

SMALL = {"learning_starts": 200, "hidden_sizes": (32, 32), "target_update_interval": 100,
         "buffer_size": 5_000, "exploration_fraction": 0.3}


def progress_without_timing(run_dir):
    """progress.jsonl minus the wall-clock keys, which cannot repeat exactly."""
    return [{k: v for k, v in r.items() if not k.startswith("time/")}
            for r in read_progress(run_dir / "progress.jsonl")]


def weights(agent):
    return [p.detach().clone() for p in agent.q_net.parameters()]


def test_continuous_actions_are_refused():
    with pytest.raises(UnsupportedSpaceError, match="Discrete or MultiDiscrete"):
        DQN("gymlab_test/Continuous-v0")


def test_multidiscrete_branching_heads_learn_a_dict_env(tmp_path, quick):
    agent = DQN("gymlab_test/DictMultiDiscrete-v0", seed=0, logdir=str(tmp_path), **quick,
                **{**SMALL, "learning_starts": 500, "exploration_fraction": 0.2})
    assert agent.q_net[-1].out_features == 3 + 2  # one head per action dimension
    agent.learn(6_000)
    # random play scores 10 * 1/6 ~ 1.7 per episode; the greedy policy should be near 10
    assert agent.evaluate(episodes=10).mean >= 9.0
    action = agent.act(agent.envs.envs[0].observation_space.sample())
    assert action.shape == (2,)


def test_same_seed_same_numbers(tmp_path, quick):
    runs = []
    for name in ("a", "b"):
        agent = DQN("CartPole-v1", seed=5, logdir=str(tmp_path / name), **quick, **SMALL)
        agent.learn(1_500)
        runs.append((agent.run.path, weights(agent)))
    (dir_a, w_a), (dir_b, w_b) = runs
    assert all(torch.equal(x, y) for x, y in zip(w_a, w_b))
    assert progress_without_timing(dir_a) == progress_without_timing(dir_b)
    assert len(progress_without_timing(dir_a)) > 10


def test_resumed_run_ends_with_the_same_weights(tmp_path, quick, monkeypatch):
    total, stop_at = 2_400, 1_337  # mid-episode, between evaluations
    straight = DQN("CartPole-v1", seed=1, logdir=str(tmp_path / "straight"), **quick, **SMALL)
    straight.learn(total)

    on_step = Session.on_step

    def interrupt_at(session, step):
        on_step(session, step)
        if step == stop_at:
            session.interrupt.signal = signal.SIGINT  # what Ctrl-C does

    monkeypatch.setattr(Session, "on_step", interrupt_at)
    first = DQN("CartPole-v1", seed=1, logdir=str(tmp_path / "split"), **quick, **SMALL)
    first.learn(total)
    assert first.outcome == "interrupted" and first.step == stop_at
    assert first.exit_code == 130
    monkeypatch.setattr(Session, "on_step", on_step)

    torch.manual_seed(12345)  # the resumed run must not depend on the process's RNG state
    np.random.seed(54321)
    resumed = DQN.resume(first.run.path)
    assert resumed.step == stop_at
    resumed.learn()
    assert resumed.step == total
    assert all(torch.equal(x, y) for x, y in zip(weights(straight), weights(resumed)))
    assert progress_without_timing(straight.run.path) == progress_without_timing(
        resumed.run.path)


def test_save_load_acts_the_same(tmp_path):
    agent = DQN("CartPole-v1", seed=2, logdir=None, progress=False, **SMALL)
    agent.learn(800)
    agent.save(tmp_path / "agent.pt")
    loaded = DQN.load(tmp_path / "agent.pt")
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.batch_policy()(obs), loaded.batch_policy()(obs))
    assert loaded.act(obs[0]) == agent.act(obs[0])


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"algo": "dqn"}))
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        DQN.resume(run)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, quick, capsys):
    agent = DQN("gymlab_test/NaNReward-v0", seed=0, logdir=str(tmp_path), **quick,
                **{**SMALL, "learning_starts": 100})
    agent.learn(5_000)
    assert agent.outcome == "diverged" and agent.exit_code == 1
    assert agent.step < 2_000
    assert "became nan" in capsys.readouterr().err
    last = torch.load(agent.run.checkpoint("last"), weights_only=True)
    assert last["step"] == 1_500  # the evaluation before the NaNs
    assert all(torch.isfinite(t).all() for t in last["weights"]["q_net"].values())
    assert not math.isnan(float(last["state"]["session"]["best_eval"]))


def test_parallel_envs_count_every_step_and_resume_exactly(tmp_path, quick, monkeypatch):
    cfg = {**quick, **SMALL, "num_envs": 3, "logdir": str(tmp_path)}
    straight = DQN("CartPole-v1", seed=4, **cfg).learn(1_500)
    assert straight.step == 1_500 and straight.buffer.size == 1_500

    on_step = Session.on_step

    def interrupt_at(session, step):
        on_step(session, step)
        if step == 999:
            session.interrupt.signal = signal.SIGTERM

    monkeypatch.setattr(Session, "on_step", interrupt_at)
    first = DQN("CartPole-v1", seed=4, **cfg).learn(1_500)
    assert first.exit_code == 143
    monkeypatch.setattr(Session, "on_step", on_step)
    resumed = DQN.resume(first.run.path).learn()
    assert all(torch.equal(x, y) for x, y in zip(weights(straight), weights(resumed)))
