"""The Lightning integration: gymlab's DQN loop under lightning.Trainer (the `lightning` extra)."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gymlab import DQN
from gymlab.core.errors import CheckpointError, UserError
from gymlab.core.logger import read_progress
from tests.test_cli import assert_one_line_error, gymlab

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lightning_dqn.py"
SMALL = {"learning_starts": 200, "hidden_sizes": (32, 32), "target_update_interval": 100,
         "buffer_size": 5_000, "exploration_fraction": 0.3, "eval_every": 500,
         "eval_episodes": 3, "log_every": 250, "progress": False}


def test_missing_extra_is_one_line_saying_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightning", None)  # what an absent package looks like
    monkeypatch.delitem(sys.modules, "gymlab.integrations.lightning", raising=False)
    with pytest.raises(UserError, match=r"^the Lightning integration needs PyTorch Lightning: "
                       r"pip install -c constraints.txt -e '\.\[lightning\]'$"):
        importlib.import_module("gymlab.integrations.lightning")


@pytest.mark.smoke
def test_example_without_the_extra_exits_2_with_one_line(tmp_path):
    code = ("import runpy, sys; sys.modules['lightning'] = None; "
            f"sys.argv = ['lightning_dqn.py', '--total-steps', '100']; "
            f"runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert_one_line_error(result)
    assert "pip install -c constraints.txt -e '.[lightning]'" in result.stderr
    assert not any(tmp_path.iterdir())  # nothing written


L = pytest.importorskip("lightning")
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import Logger  # noqa: E402

from gymlab.integrations.lightning import DQNModule  # noqa: E402


class RecordingLogger(Logger):
    """Keeps every log_metrics call: (step, metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, dict]] = []

    name, version = "recording", 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.calls.append((step, dict(metrics)))


def trainer(tmp_path, **kwargs):
    options = {"max_epochs": -1, "logger": False, "enable_checkpointing": False,
               "enable_progress_bar": False, "enable_model_summary": False,
               "num_sanity_val_steps": 0, "default_root_dir": str(tmp_path), **kwargs}
    return L.Trainer(**options)


@pytest.mark.parametrize("updates_per_batch", [8, 1])
def test_lightning_runs_gymlabs_loop_same_weights_and_scalars_as_dqn_learn(tmp_path,
                                                                            updates_per_batch):
    # the options that change the update: Double DQN, 2 gradient steps, clipping, lr decay;
    # 8 updates per Lightning batch (the default) leave a group of 2 at each epoch's end
    cfg = {**SMALL, "seed": 3, "double_q": True, "gradient_steps": 2, "max_grad_norm": 1.0,
           "anneal_lr": True}
    native = DQN("CartPole-v1", logdir=str(tmp_path / "native"), **cfg).learn(2_000)
    module = DQNModule("CartPole-v1", total_steps=2_000, updates_per_batch=updates_per_batch,
                       **cfg)
    logger = RecordingLogger()
    fitted = trainer(tmp_path, logger=logger)
    fitted.fit(module)
    assert module.agent.step == 2_000
    updates = (2_000 - 200) // 4 * 2
    assert fitted.global_step == updates  # Lightning counts every optimizer step
    assert native.optimizer.state[native.q_net[0].weight]["step"] == updates
    for ours, theirs in zip(native.q_net.parameters(), module.q_net.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    for ours, theirs in zip(native.target_net.parameters(), module.target_net.parameters()):
        assert torch.equal(ours, theirs)
    # the training scalars: logged at the same steps with the same values
    keys = ("train/loss", "train/q_mean", "train/epsilon", "train/learning_rate")
    expected = [(r["step"], {k: r[k] for k in keys if isinstance(r[k], float)})
                for r in read_progress(native.run.path / "progress.jsonl") if "train/loss" in r]
    logged = [(step, {k: m[k] for k in keys if k in m})
              for step, m in logger.calls if "train/epsilon" in m]
    assert [s for s, _ in logged] == list(range(250, 2_001, 250))  # every log_every, no more
    assert logged == expected  # exact: the same floats
    assert all("episode/return" in m and "eval/return_mean" not in m
               for _, m in logger.calls if "train/epsilon" in m)
    # an epoch: the 250 gradient steps of 500 environment steps, then one evaluation
    assert [step for step, m in logger.calls if "eval/return_mean" in m] == [700, 1200, 1700,
                                                                          2000]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_group_and_epoch_sizes_are_one_clear_error(bad):
    for name in ("updates_per_batch", "updates_per_epoch"):
        with pytest.raises(UserError, match=rf"^{name} must be a positive integer, got "):
            DQNModule("CartPole-v1", **{name: bad}, **SMALL)


def test_checkpoints_load_into_gymlab_dqn_and_resume_the_fit(tmp_path):
    module = DQNModule("CartPole-v1", seed=2, total_steps=1_500, **SMALL)
    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="eval/return_mean", mode="max",
                           filename="best", save_last=True)
    trainer(tmp_path, enable_checkpointing=True, callbacks=[best]).fit(module)
    last = tmp_path / "ckpt" / "last.ckpt"
    assert Path(best.best_model_path) == tmp_path / "ckpt" / "best.ckpt" and last.exists()

    agent = DQN.from_lightning_checkpoint(last)  # loaded weights-only, as every checkpoint
    assert agent.step == 1_500 and agent.config == module.agent.config
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.batch_policy()(obs), module.agent.batch_policy()(obs))
    assert agent.buffer.size == module.agent.buffer.size == 1_500

    resumed = DQNModule("CartPole-v1", seed=2, total_steps=2_500, **SMALL)
    trainer(tmp_path).fit(resumed, ckpt_path=str(last))
    assert resumed.agent.step == 2_500 and resumed.agent.buffer.size == 2_500

    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}, "pytorch-lightning_version": L.__version__}, plain)
    with pytest.raises(CheckpointError, match="not a gymlab checkpoint"):
        DQN.from_lightning_checkpoint(plain)


@pytest.mark.smoke
def test_example_trains_and_gymlab_eval_and_record_take_its_checkpoint(tmp_path):
    tiny = ["--total-steps", "1200", "--eval-every", "600", "--eval-episodes", "2",
            "--learning-starts", "200", "--seed", "1", "--root-dir", str(tmp_path)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, str(EXAMPLE), *tiny], capture_output=True,
                            text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr
    (best,) = tmp_path.glob("lightning_logs/version_0/checkpoints/best.ckpt")
    assert f"gymlab eval {best}" in result.stdout
    evaluated = gymlab("eval", str(best), "--episodes", "3")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "over 3 episodes" in evaluated.stdout
    pytest.importorskip("imageio_ffmpeg")
    recorded = gymlab("record", str(best), "--out", str(tmp_path / "a.mp4"))
    assert recorded.returncode == 0, recorded.stderr
    assert (tmp_path / "a.mp4").stat().st_size > 0

    bad = subprocess.run([sys.executable, str(EXAMPLE), "--gamma", "2"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert_one_line_error(bad)
    assert "gamma must be in [0, 1]" in bad.stderr


@pytest.mark.learning
def test_trainer_solves_cartpole_to_195(tmp_path):
    # gymlab's tuned CartPole config; seed 0 passes 195 at the evaluation after 4,000 steps
    module = DQNModule("CartPole-v1", seed=0, total_steps=10_000, stop_reward=195.0,
                       eval_episodes=10)
    trainer(tmp_path).fit(module)
    assert module.solved_step is not None and module.solved_step <= 10_000
    assert module.agent.evaluate(episodes=20).mean >= 195  # fresh episodes
