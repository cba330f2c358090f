"""Unit tests of the shared machinery: spaces, replay buffer, environment pool, checkpoints."""

import json
import os
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch

from gymlab.core.buffers import ReplayBuffer
from gymlab.core.checkpoints import load_checkpoint, save_checkpoint
from gymlab.core.envs import EnvPool, check_env_id
from gymlab.core.errors import CheckpointError, UnsupportedSpaceError, UserError
from gymlab.core.evaluation import Evaluator
from gymlab.core.spaces import ObservationEncoder, discrete_branches


def test_encoder_one_hot_and_dict():
    space = gym.spaces.Dict({"b": gym.spaces.Box(-1, 1, (2,)), "d": gym.spaces.Discrete(3),
                             "m": gym.spaces.MultiDiscrete([2, 3])})
    enc = ObservationEncoder(space)
    assert enc.size == 2 + 3 + 5
    out = enc({"b": np.array([0.5, -0.5]), "d": 2, "m": np.array([1, 0])})
    np.testing.assert_array_equal(out, [0.5, -0.5, 0, 0, 1, 0, 1, 1, 0, 0])


def test_unsupported_spaces_are_clear():
    with pytest.raises(UnsupportedSpaceError, match="not supported"):
        ObservationEncoder(gym.spaces.Tuple([gym.spaces.Discrete(2)]))
    with pytest.raises(TypeError, match="Discrete or MultiDiscrete"):
        discrete_branches(gym.spaces.Box(-1, 1, (1,)), "DQN")
    assert discrete_branches(gym.spaces.MultiDiscrete([3, 2]), "DQN") == (3, 2)


def test_unknown_env_suggests_close_ids():
    with pytest.raises(UserError, match="did you mean CartPole-v1"):
        check_env_id("CartPol-v1")


def test_replay_buffer_wraps_and_round_trips():
    buf = ReplayBuffer(5, 2, 1, seed=0)
    for i in range(7):
        buf.add(np.full((1, 2), i, np.float32), np.array([[i % 2]]), np.array([i], np.float32),
                np.full((1, 2), i + 1, np.float32), np.array([0.0], np.float32))
    assert buf.size == 5 and buf.pos == 2
    assert sorted(buf.rewards.tolist()) == [2, 3, 4, 5, 6]
    copy = ReplayBuffer(5, 2, 1, seed=99)
    copy.load_state_dict(buf.state_dict())
    for a, b in zip(buf.sample(8), copy.sample(8)):
        assert torch.equal(a, b)


def test_env_pool_replay_restores_exact_state():
    pool = EnvPool("CartPole-v1", 2, seed=3)
    pool.reset()
    for _ in range(37):
        pool.step(np.array([0, 1]))
    saved = pool.state_dict()
    after = [pool.step(np.array([1, 0]))[0] for _ in range(5)]
    fresh = EnvPool("CartPole-v1", 2, seed=123)
    fresh.reset()
    fresh.load_state_dict(saved)
    again = [fresh.step(np.array([1, 0]))[0] for _ in range(5)]
    for a, b in zip(after, again):
        np.testing.assert_array_equal(a, b)


def test_evaluator_is_deterministic_and_runs_every_episode():
    ev = Evaluator("CartPole-v1", 4, seed=7)
    first = ev(lambda obs: (obs[:, 2] > 0).astype(np.int64))
    second = ev(lambda obs: (obs[:, 2] > 0).astype(np.int64))
    assert len(first.returns) == 4 and (first.lengths > 0).all()
    np.testing.assert_array_equal(first.returns, second.returns)


def test_checkpoint_errors(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, "dqn", {"step": 3})
    assert load_checkpoint(path, "dqn")["step"] == 3
    assert not list(tmp_path.glob("*.tmp"))  # written through a temp file, then renamed
    with pytest.raises(CheckpointError, match="not ppo|is a dqn checkpoint"):
        load_checkpoint(path, "ppo")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a gymlab checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_run_directories_never_share_a_name(tmp_path):
    from gymlab.core.run import RunDir

    paths = {RunDir.create(str(tmp_path), "dqn", "CartPole-v1", {}).path for _ in range(3)}
    assert len(paths) == 3 and all((p / "config.json").is_file() for p in paths)


def test_next_multiple_equals_stepping_the_schedule_one_interval_at_a_time():
    from gymlab.core.session import _next_multiple

    for due in range(-3, 12):
        for every in range(1, 6):
            for step in range(-3, 30):
                expected = due
                while expected <= step:
                    expected += every
                assert _next_multiple(due, every, step) == expected


def test_numpy_checkpoints_round_trip_and_refuse_pickles(tmp_path):
    path = tmp_path / "c.pt"
    payload = {"step": 3, "weights": {"w": np.arange(6.0).reshape(2, 3)},
               "state": {"ints": np.arange(3), "best": float("-inf"), "rng": "{}",
                         "shapes": [np.zeros(2, np.float32), None]}}
    save_checkpoint(path, "ga", payload, numpy_only=True)
    data = load_checkpoint(path, "ga")
    np.testing.assert_array_equal(data["weights"]["w"], payload["weights"]["w"])
    assert data["state"]["ints"].dtype == np.int64 and data["state"]["best"] == float("-inf")
    assert data["state"]["shapes"][0].dtype == np.float32 and data["state"]["shapes"][1] is None
    with pytest.raises(CheckpointError, match="is a ga checkpoint"):
        load_checkpoint(path, "es")
    with pytest.raises(TypeError, match="cannot hold"):
        save_checkpoint(tmp_path / "t.pt", "ga", {"w": torch.zeros(2)}, numpy_only=True)
    assert not list(tmp_path.glob("*.tmp"))
    # an object array (a pickle) inside the archive is refused, never unpickled
    crafted = tmp_path / "crafted.pt"
    with zipfile.ZipFile(crafted, "w") as archive:
        archive.writestr("gymlab.json", json.dumps(
            {"format": "gymlab-checkpoint-v1", "algo": "ga", "w": {"__array__": 0}}))
        with archive.open("arrays/0.npy", "w") as entry:
            np.lib.format.write_array(entry, np.array([print], dtype=object),
                                      allow_pickle=True)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(crafted)
