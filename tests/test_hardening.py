"""What a user's own environments, bad files, kills and a full disk must not break."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from gymlab.core.checkpoints import checkpoint_for, load_checkpoint, save_checkpoint
from gymlab.core.envs import EnvPool, check_env_id, make_env
from gymlab.core.errors import (
    CheckpointError,
    CheckpointWriteError,
    CorruptCheckpointError,
    EnvError,
    UserError,
)
from gymlab.core.evaluation import Evaluator
from gymlab.core.run import RunDir
from gymlab.core.spaces import ObservationEncoder
from tests.processes import workers_left_after_kill

ROOT = Path(__file__).resolve().parents[1]


class PlainEnv(gym.Env):
    """A constructor without render_mode; MultiBinary and nested Dict observations of
    several dtypes; raises in step `fail_at` when given."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.observation_space = gym.spaces.Dict({
            "bits": gym.spaces.MultiBinary([2, 2]),
            "inner": gym.spaces.Dict({
                "pos": gym.spaces.Box(-5, 5, (2,), np.int64),
                "flag": gym.spaces.Box(0, 1, (1,), bool),
                "mode": gym.spaces.Discrete(3, start=1),
            }),
        })
        self.action_space = gym.spaces.Discrete(2)
        self.fail_at, self.t = fail_at, 0

    def _obs(self) -> dict:
        return {"bits": np.array([[1, 0], [0, 1]], np.int8),
                "inner": {"pos": np.array([self.t, -2]), "flag": np.array([True]),
                          "mode": 3}}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        if self.fail_at is not None and self.t >= self.fail_at:
            raise ValueError("the simulator lost its state\nsecond line of detail")
        return self._obs(), 1.0, False, self.t >= 4, {}


gym.register("gymlab_hardening/Plain-v0", entry_point=PlainEnv)
gym.register("gymlab_hardening/Failing-v0", entry_point=PlainEnv, kwargs={"fail_at": 3})


def _python(code: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kwargs)


# -- 1. any environment gym.make builds -----------------------------------------------------
def test_env_without_render_mode_and_with_multibinary_nested_dict_observations():
    env = make_env("gymlab_hardening/Plain-v0")
    encoder = ObservationEncoder(env.observation_space)
    obs, _ = env.reset(seed=0)
    # bits (4), then inner in key order: flag (1), mode one-hot (3), pos (2)
    assert encoder.size == 4 + 1 + 3 + 2
    np.testing.assert_array_equal(encoder(obs), [1, 0, 0, 1, 1, 0, 0, 1, 0, -2])
    assert encoder(obs).dtype == np.float32
    pool = EnvPool("gymlab_hardening/Plain-v0", 2, seed=0)
    pool.reset()
    *_, finished = [pool.step(np.array([0, 1])) for _ in range(4)][-1]
    assert finished == [(4.0, 4), (4.0, 4)]
    result = Evaluator("gymlab_hardening/Plain-v0", 2, seed=0)(lambda o: np.zeros(len(o), int))
    assert result.returns.tolist() == [4.0, 4.0]
    short = Evaluator("gymlab_hardening/Plain-v0", 1, seed=0, env_kwargs={"max_episode_steps": 2})
    assert short(lambda o: np.zeros(len(o), int)).lengths.tolist() == [2]


class EndlessEnv(gym.Env):
    """Never terminates nor truncates, and is registered without a time limit."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 1.0, False, False, {}


gym.register("gymlab_hardening/Endless-v0", entry_point=EndlessEnv)


def test_an_endless_env_without_time_limit_ends_evaluation_and_training_episodes(
        monkeypatch, capsys):
    import gymlab.core.envs as envs

    monkeypatch.setattr(envs, "DEFAULT_TIME_LIMIT", 30)
    monkeypatch.setattr(envs, "_noted_without_limit", set())
    calls = []

    def act(obs: np.ndarray) -> np.ndarray:  # fails, rather than hangs, without a limit
        calls.append(1)
        assert len(calls) < 1_000, "the evaluation does not end"
        return np.zeros(len(obs), int)

    result = Evaluator("gymlab_hardening/Endless-v0", 2, seed=0)(act)
    assert result.lengths.tolist() == [30, 30]
    assert capsys.readouterr().err.count("has no time limit") == 1  # once per process
    pool = EnvPool("gymlab_hardening/Endless-v0", 1, seed=0)
    pool.reset()
    finished = [f for _ in range(65) for f in pool.step(np.array([0]))[-1]]
    assert finished == [(30.0, 30), (30.0, 30)] and len(pool.episode_actions[0]) == 5
    own = Evaluator("gymlab_hardening/Endless-v0", 1, seed=0,
                    env_kwargs={"max_episode_steps": 7})
    assert own(act).lengths.tolist() == [7]


# -- 2. gymnasium's "module:Namespace/Env-v0" ids --------------------------------------------
def test_module_colon_id_imports_the_module_that_registers_it(tmp_path, monkeypatch):
    (tmp_path / "hardening_user_envs.py").write_text(textwrap.dedent("""
        import gymnasium as gym
        gym.register("hardening_user/Plain-v0",
                     entry_point="tests.test_hardening:PlainEnv", max_episode_steps=3)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    env_id = "hardening_user_envs:hardening_user/Plain-v0"
    check_env_id(env_id)
    env = make_env(env_id)
    assert env.spec.max_episode_steps == 3
    from gymlab.agents.evolution.vector_envs import make_batched_env, time_limit

    assert time_limit(env_id, {}) == 3
    assert make_batched_env(env_id, {}).obs_size == 10
    run = RunDir.create(str(tmp_path / "runs"), "ppo", env_id, {})
    assert ":" not in run.path.name and run.path.name.startswith("ppo-hardening_user_envs_")
    with pytest.raises(UserError, match="cannot import 'no_such_module_x'"):
        check_env_id("no_such_module_x:hardening_user/Plain-v0")


# -- 3. import gymlab registers its environments, without torch ----------------------------
def test_import_gymlab_registers_envs_fast_and_without_torch():
    out = _python("""
        import sys, time
        t = time.process_time()  # CPU seconds: the test machine's load does not count
        import gymlab
        seconds = time.process_time() - t
        assert "torch" not in sys.modules, "import gymlab imported torch"
        import gymnasium as gym
        gym.make("gymlab/Navigation2D-v0").reset(seed=0)
        assert "gymlab/NAS-v0" in gym.registry
        print(seconds)
    """)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 1.0


def test_run_module_imports_without_torch():
    out = _python("""
        import sys
        from gymlab.core.run import RunConfig, RunDir
        from gymlab.core import envs, processes
        assert "torch" not in sys.modules
    """)
    assert out.returncode == 0, out.stderr


# -- 4. an environment that raises inside step ------------------------------------------------
def test_env_raising_in_step_gives_one_line_naming_env_and_step():
    env = make_env("gymlab_hardening/Failing-v0")
    env.reset(seed=0)
    env.step(0)
    env.step(0)
    with pytest.raises(EnvError) as info:
        env.step(0)
    message = str(info.value)
    assert "\n" not in message
    assert "gymlab_hardening/Failing-v0" in message and "step 3" in message
    assert "ValueError: the simulator lost its state" in message
    assert isinstance(info.value.__cause__, ValueError) and info.value.step == 3
    copy = pickle.loads(pickle.dumps(info.value))  # raised in a worker, re-raised here
    assert str(copy) == message and copy.env_id == "gymlab_hardening/Failing-v0"
    pool = EnvPool("gymlab_hardening/Failing-v0", 1, seed=0)
    pool.reset()
    with pytest.raises(EnvError, match="step 3"):
        for _ in range(3):
            pool.step(np.array([0]))


def test_user_errors_from_an_env_pass_through_unwrapped():
    class Strict(PlainEnv):
        def step(self, action):
            raise UserError("bad dataset path")

    gym.register("gymlab_hardening/Strict-v0", entry_point=Strict)
    env = make_env("gymlab_hardening/Strict-v0")
    env.reset()
    with pytest.raises(UserError, match="^bad dataset path$"):
        env.step(0)


# -- 5. --logdir naming a file -------------------------------------------------------------
def test_logdir_that_is_a_file_is_one_user_error_not_a_hang(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    out = _python(f"""
        from gymlab.core.errors import UserError
        from gymlab.core.run import RunDir
        try:
            RunDir.create({str(file)!r}, "ppo", "CartPole-v1", {{}})
        except UserError as exc:
            print(exc)
    """, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "is a file, not a folder" in out.stdout
    with pytest.raises(UserError, match="cannot create the log directory"):
        RunDir.create(str(file / "below"), "ppo", "CartPole-v1", {})


# -- 6. disk full while writing a checkpoint -------------------------------------------------
def test_failed_checkpoint_write_is_one_line_keeps_last_and_leaves_no_tmp(tmp_path, monkeypatch):
    import torch

    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, "ppo", {"step": 1})

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter "
                           "failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointWriteError) as info:
        save_checkpoint(path, "ppo", {"step": 2})
    assert isinstance(info.value, OSError)  # the CLI prints OSErrors on one line, exit 1
    assert "\n" not in str(info.value) and "file write failed" in str(info.value)
    assert not list(path.parent.glob("*.tmp"))
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1


def test_checkpoint_bug_that_is_not_a_write_failure_still_raises(tmp_path, monkeypatch):
    import torch

    def broken(*args, **kwargs):
        raise RuntimeError("tensor subclass cannot be serialized")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="cannot be serialized"):
        save_checkpoint(tmp_path / "c.pt", "ppo", {})
    assert not list(tmp_path.glob("*.tmp"))


# -- 7. corrupt checkpoints ------------------------------------------------------------------
def test_random_bytes_and_flipped_bytes_read_as_corrupt(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(CorruptCheckpointError, match="truncated or corrupt"):
        load_checkpoint(junk)
    good = tmp_path / "good.pt"
    save_checkpoint(good, "ppo", {"weights": {"w": np.arange(64.0).tolist()}})
    data = bytearray(good.read_bytes())
    data[len(data) // 3] ^= 0xFF
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="truncated or corrupt"):
        load_checkpoint(flipped)


def test_checkpoint_for_falls_back_from_a_corrupt_or_missing_best(tmp_path, capsys):
    run = RunDir.create(str(tmp_path), "ppo", "CartPole-v1", {})
    save_checkpoint(run.checkpoint("last"), "ppo", {"step": 7})
    assert checkpoint_for(run.path) == run.checkpoint("last")
    assert "no best.pt yet" in capsys.readouterr().err
    run.checkpoint("best").write_bytes(b"\x00" * 100)
    assert checkpoint_for(run.path) == run.checkpoint("last")
    assert "corrupt best.pt" in capsys.readouterr().err
    assert load_checkpoint(run.path)["step"] == 7
    save_checkpoint(run.checkpoint("best"), "ppo", {"step": 5})
    assert checkpoint_for(run.path) == run.checkpoint("best")
    assert checkpoint_for(run.path, "last") == run.checkpoint("last")
    assert checkpoint_for(run.checkpoint("best")) == run.checkpoint("best")
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint_for(tmp_path / "nowhere")


# -- 8. a double Ctrl-C ---------------------------------------------------------------------
DOUBLE_INTERRUPT = """
import atexit, sys, time
from gymlab.core.interrupt import GracefulInterrupt

atexit.register(time.sleep, 3)  # a slow shutdown, as a pool or writer thread joining
with GracefulInterrupt() as interrupt:
    print("ready", flush=True)
    while not interrupt.requested or sys.argv[1] == "busy":
        time.sleep(0.01)
print("resume with: ...", flush=True)
"""


@pytest.mark.parametrize("phase", ["busy", "exiting"])
def test_second_interrupt_exits_silently(phase):
    proc = subprocess.Popen([sys.executable, "-c", DOUBLE_INTERRUPT, phase], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert ("resume with" in out) == (phase == "exiting")


# -- 9. workers end with their parent -------------------------------------------------------
KILLED_PARENT = """
import numpy as np, gymnasium as gym
from gymlab.agents.evolution.parallel import PopulationEvaluator
from gymlab.agents.evolution.policy import ActionHead, MLPSpec

if __name__ == "__main__":
    spec = MLPSpec((6, 4, 3), "tanh")
    head = ActionHead.for_space(gym.make("Acrobot-v1").action_space, "GA")
    with PopulationEvaluator("Acrobot-v1", {"max_episode_steps": 5}, spec, head, 3) as ev:
        ev(spec.init(np.random.default_rng(0), 6, 1.0), np.array([1]))
        print(*ev.pool._processes, flush=True)
        input()  # wait to be killed
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_workers_exit_when_their_parent_is_killed():
    assert workers_left_after_kill(KILLED_PARENT, ROOT, workers=2) == []


# -- 10. start-up: no torch.optim (it imports torch._dynamo), no tensorboard package -----------
def _adam_run(make, fused: bool, steps: int, state: dict | None = None):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    opt = make(net.parameters(), lr=3e-3, eps=1e-5, fused=fused)
    if state is not None:
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
    data = torch.Generator().manual_seed(1 if state is None else 2)
    for t in range(steps):
        loss = net(torch.randn(16, 4, generator=data)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        opt.param_groups[0]["lr"] = 3e-3 * (1 - t / 20)  # annealed, as PPO does
    return net, opt


@pytest.mark.parametrize("fused", [True, False])
def test_gymlab_adam_equals_torch_adam_bit_for_bit_and_shares_its_state(fused):
    import torch

    from gymlab.core.optim import Adam

    ours, ours_opt = _adam_run(Adam, fused, 12)
    theirs, theirs_opt = _adam_run(torch.optim.Adam, fused, 12)
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))
    # either optimizer continues from the other's state_dict, with the same numbers
    state = {"net": theirs.state_dict(), "opt": theirs_opt.state_dict()}
    mine_after, _ = _adam_run(Adam, fused, 5, state)
    state = {"net": ours.state_dict(), "opt": ours_opt.state_dict()}
    theirs_after, _ = _adam_run(torch.optim.Adam, fused, 5, state)
    assert all(torch.equal(a, b)
               for a, b in zip(mine_after.parameters(), theirs_after.parameters()))


def test_gymlab_adam_and_event_writer_import_no_compiler_or_tensorboard(tmp_path):
    out = _python(f"""
        import sys, torch
        from gymlab.core.optim import Adam
        from gymlab.core.tfevents import EventWriter
        net = torch.nn.Linear(3, 2)
        opt = Adam(net.parameters(), fused=True)
        net(torch.ones(1, 3)).sum().backward()
        opt.step()
        opt.state_dict()
        writer = EventWriter({str(tmp_path)!r})
        writer.add_scalar("loss", 1.0, 1)
        writer.close()
        heavy = [m for m in ("torch._dynamo", "tensorboard", "sympy") if m in sys.modules]
        assert not heavy, heavy
    """)
    assert out.returncode == 0, out.stderr


def test_event_files_read_back_in_tensorboard_with_purge(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gymlab.core.tfevents import EventWriter, crc32c

    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    first = EventWriter(tmp_path)
    for step in range(5):
        first.add_scalar("eval/return_mean", step * 1.5, step * 100)
    first.add_scalar("loss", float("nan"), 50)
    first.add_scalar("huge", 1e300, 60)
    first.close()
    resumed = EventWriter(tmp_path, purge_step=200)  # a run resumed from step 200
    resumed.add_scalar("eval/return_mean", 99.0, 300)
    resumed.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    curve = [(e.step, e.value) for e in events.Scalars("eval/return_mean")]
    assert curve == [(0, 0.0), (100, 1.5), (300, 99.0)]
    assert np.isnan(events.Scalars("loss")[0].value)
    assert events.Scalars("huge")[0].value == np.inf


def test_multibinary_actions_are_branches_of_two():
    from gymlab.core.spaces import discrete_branches

    assert discrete_branches(gym.spaces.MultiBinary(3), "DQN") == (2, 2, 2)
    with pytest.raises(TypeError, match="Discrete or MultiDiscrete"):
        discrete_branches(gym.spaces.MultiBinary([2, 2]), "DQN")


def test_workers_started_from_a_thread_outlive_that_thread():
    import threading

    from gymlab.core.processes import worker_pool

    box = {}

    def start() -> None:
        box["pool"] = worker_pool(1)
        box["first"] = box["pool"].submit(os.getpid).result(timeout=60)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    time.sleep(0.5)  # a parent-death signal tied to the finished thread would have fired
    with box["pool"] as pool:
        assert pool.submit(os.getpid).result(timeout=60) == box["first"]
