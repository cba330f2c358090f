"""Smoke tests of every CLI command on tiny budgets, and one-line errors for bad input."""

import signal
import subprocess
import sys
import time

import pytest

from gymlab.cli import main

pytestmark = pytest.mark.smoke

TINY = ["--total-steps", "1200", "--eval-every", "600", "--eval-episodes", "2",
        "--learning-starts", "200", "--progress", "false"]


def gymlab(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "gymlab", *args], capture_output=True,
                          text=True, timeout=240, **kwargs)


def assert_one_line_error(result, code=2):
    __tracebackhide__ = True
    err = result.stderr if hasattr(result, "stderr") else result
    lines = [line for line in err.strip().splitlines() if line]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("gymlab: error:"), err
    if hasattr(result, "returncode"):
        assert result.returncode == code


def run_main(capsys, *args):
    """The CLI in this process (so tests can use test-only environments)."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("runs")
    result = gymlab("train", "dqn", "--env", "CartPole-v1", "--logdir", str(logdir), *TINY)
    assert result.returncode == 0, result.stderr
    (run,) = logdir.iterdir()
    return run


def test_train_writes_a_complete_run_directory(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.json", "progress.jsonl", "checkpoints"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    assert {p.name for p in (trained_run / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    config = (trained_run / "config.json").read_text()
    for key in ('"algo": "dqn"', '"seed": 0', '"torch":', '"command":', '"learning_rate"'):
        assert key in config


def test_eval(trained_run):
    result = gymlab("eval", str(trained_run), "--episodes", "3", "--checkpoint", "last")
    assert result.returncode == 0, result.stderr
    assert "±" in result.stdout and "over 3 episodes" in result.stdout


def test_record_writes_a_readable_mp4(trained_run, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from tests.videos import count_frames

    out = tmp_path / "agent.mp4"
    result = gymlab("record", str(trained_run), "--out", str(out), "--episodes", "2")
    assert result.returncode == 0, result.stderr
    frames = int(result.stdout.split(":")[1].split("frames")[0])
    assert frames >= 2 * 9  # two CartPole episodes of at least 8 steps, plus first frames
    assert count_frames(out) == frames


def test_plot(trained_run, tmp_path):
    out = tmp_path / "curves.png"
    result = gymlab("plot", str(trained_run), str(trained_run), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"


def test_resume_extends_a_finished_run(trained_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    result = gymlab("train", "--resume", str(run), "--total-steps", "1500", "--progress", "false")
    assert result.returncode == 0, result.stderr
    import torch

    from gymlab.core.logger import read_progress

    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == 1500
    steps = [r["step"] for r in read_progress(run / "progress.jsonl")]
    assert steps == sorted(steps) and steps[-1] > 1200


def test_help_is_fast_and_complete():
    start = time.perf_counter()
    result = gymlab("--help")
    assert result.returncode == 0 and time.perf_counter() - start < 3.0
    for command in ("train", "eval", "record", "plot"):
        assert command in result.stdout
    dqn_help = gymlab("train", "dqn", "--help").stdout
    for flag in ("--buffer-size", "--exploration-fraction", "--stop-reward", "--double-q",
                 "--resume", "Replay memory capacity", "(default: 0.99)"):
        assert flag in dqn_help
    for command in ("eval", "record", "plot"):
        assert "--out" in gymlab(command, "--help").stdout or command == "eval"


def train_then_signal(logdir, sig):
    """A long `gymlab train` stopped by `sig` once it is training: (exit code, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gymlab", "train", "dqn", "--logdir", str(logdir),
         "--total-steps", "1000000", "--eval-every", "0", "--progress", "false"],
        stderr=subprocess.PIPE, text=True)
    assert "run directory" in proc.stderr.readline()
    time.sleep(1.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_ctrl_c_saves_and_prints_the_resume_command(tmp_path):
    code, err = train_then_signal(tmp_path, signal.SIGINT)
    assert code == 130, err
    assert "resume with: gymlab train --resume" in err and "Traceback" not in err
    (run,) = tmp_path.iterdir()
    assert (run / "checkpoints" / "last.pt").exists()


def test_sigterm_exits_143(tmp_path):
    code, err = train_then_signal(tmp_path, signal.SIGTERM)
    assert code == 143, err


@pytest.mark.parametrize("args, message", [
    (["train", "dqn", "--env", "CartPol-v1"], "did you mean CartPole-v1"),
    (["train", "dqn", "--env", "gymlab_test/Continuous-v0"], "Discrete or MultiDiscrete"),
    (["train", "dqn", "--batch-size", "0"], "batch_size must be positive"),
    (["train", "dqn", "--learning-rate=-1e-3"], "learning_rate must be positive"),
    (["train", "dqn", "--buffer-size", "-10"], "buffer_size must be positive"),
    (["train", "dqn", "--batch-size", "abc"], "expected int"),
    (["train", "dqn", "--bogus", "3"], "unrecognized argument --bogus"),
    (["train", "dqn", "--activation", "swish"], "expected one of relu"),
    (["train"], "train needs an algorithm"),
    (["eval", "/nonexistent/run"], "/nonexistent/run does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, message):
    code, out, err = run_main(capsys, *args, "--logdir", str(tmp_path)) if args[0] == "train" \
        and len(args) > 1 else run_main(capsys, *args)
    assert code == 2
    assert_one_line_error(err)
    assert message in err
    assert not any(tmp_path.iterdir())  # nothing half-made that looks like a run


def test_resume_errors(capsys, tmp_path, trained_run):
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)
    (empty / "config.json").write_text('{"algo": "dqn"}')
    code, _, err = run_main(capsys, "train", "--resume", str(empty))
    assert code == 2 and "no checkpoint to resume" in err
    assert_one_line_error(err)
    code, _, err = run_main(capsys, "train", "--resume", str(trained_run), "--seed", "3")
    assert code == 2 and "keeps its config; cannot change seed" in err


def test_corrupt_and_foreign_checkpoints(capsys, tmp_path, trained_run):
    import shutil

    import torch

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    code, _, err = run_main(capsys, "eval", str(run), "--checkpoint", "last")
    assert code == 2 and "truncated or corrupt" in err
    assert_one_line_error(err)
    code, _, err = run_main(capsys, "train", "--resume", str(run))
    assert code == 2 and "truncated or corrupt" in err

    data = torch.load(trained_run / "checkpoints" / "best.pt", weights_only=True)
    data["algo"] = "a2c"
    torch.save(data, run / "checkpoints" / "best.pt")
    from gymlab import DQN

    with pytest.raises(ValueError, match="is a a2c checkpoint, not dqn"):
        DQN.load(run / "checkpoints" / "best.pt")
    code, _, err = run_main(capsys, "eval", str(run))
    assert code == 2 and "unknown algorithm 'a2c'" in err


def test_record_needs_rgb_array(capsys, tmp_path):
    from gymlab import DQN

    agent = DQN("gymlab_test/DictMultiDiscrete-v0", logdir=str(tmp_path), progress=False,
                learning_starts=10, eval_every=25, eval_episodes=1)
    agent.learn(50)
    capsys.readouterr()
    code, _, err = run_main(capsys, "record", str(agent.run.path), "--out",
                            str(tmp_path / "x.mp4"))
    assert code == 2 and "no rgb_array rendering" in err
    assert_one_line_error(err)
    assert not (tmp_path / "x.mp4").exists()


def test_train_ppo_then_eval(tmp_path):
    result = gymlab("train", "ppo", "--env", "Pendulum-v1", "--logdir", str(tmp_path),
                    "--total-steps", "512", "--num-envs", "2", "--num-steps", "64",
                    "--num-minibatches", "4", "--update-epochs", "4",
                    "--eval-every", "256", "--eval-episodes", "2", "--normalize-obs", "true",
                    "--progress", "false")
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    result = gymlab("eval", str(run), "--episodes", "2")
    assert result.returncode == 0 and "over 2 episodes" in result.stdout, result.stderr


@pytest.mark.parametrize("args, message", [
    (["--num-minibatches", "0"], "num_minibatches must be positive"),
    (["--env", "gymlab_test/Odd-v0"], "not supported"),
    (["--video", "sideways"], "expected one of none, before-after"),
])
def test_ppo_bad_input(capsys, tmp_path, args, message):
    import gymnasium as gym

    from tests.envs import NaNRewardEnv

    class TupleObs(NaNRewardEnv):
        def __init__(self, render_mode=None):
            super().__init__()
            self.observation_space = gym.spaces.Tuple([gym.spaces.Discrete(2)])

    gym.register("gymlab_test/Odd-v0", entry_point=TupleObs)
    try:
        code, _, err = run_main(capsys, "train", "ppo", *args, "--logdir", str(tmp_path))
    finally:
        del gym.registry["gymlab_test/Odd-v0"]
    assert code == 2 and message in err
    assert_one_line_error(err)
    assert not any(tmp_path.iterdir())
