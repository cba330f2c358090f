"""The commands every algorithm shares, on tiny budgets: train, train --resume (no algorithm
named: config.json says which), eval, plot, record; and the exit codes of their outcomes."""

import json

import pytest

from gymlab.core.logger import read_progress
from tests.test_cli import assert_one_line_error, run_main

FAMILIES = {
    "ppo": (["--env", "CartPole-v1", "--total-steps", "256", "--num-envs", "2", "--num-steps",
             "64", "--num-minibatches", "2", "--update-epochs", "1", "--eval-every", "128",
             "--eval-episodes", "1"], ["--total-steps", "512"]),
    "es": (["--env", "CartPole-v1", "--population", "4", "--generations", "1", "--episodes", "1",
            "--max-episode-steps", "50", "--eval-episodes", "1"], ["--generations", "2"]),
    "maml": (["--meta-batch-size", "2", "--fast-batch-size", "2", "--num-batches", "1",
              "--first-order"], ["--num-batches", "2"]),
}
"""algorithm -> (flags of a tiny run, flags that make its resume go one iteration further)."""


def only_run(logdir):
    (run,) = logdir.iterdir()
    return run


@pytest.mark.smoke
@pytest.mark.parametrize("algo", list(FAMILIES))
def test_train_resume_eval_plot_for_each_family(tmp_path, capsys, algo):
    flags, further = FAMILIES[algo]
    logdir = tmp_path / "runs"
    code, _, err = run_main(capsys, "train", algo, *flags, "--logdir", str(logdir),
                            "--progress", "false")
    assert code == 0, err
    run = only_run(logdir)
    steps = [r["step"] for r in read_progress(run / "progress.jsonl")]
    code, _, err = run_main(capsys, "train", "--resume", str(run), *further,
                            "--progress", "false")
    assert code == 0, err
    resumed = [r["step"] for r in read_progress(run / "progress.jsonl")]
    assert resumed[:len(steps)] == steps and resumed[-1] > steps[-1]

    code, out, err = run_main(capsys, "eval", str(run), "--episodes", "2", "--checkpoint",
                              "last")
    assert code == 0 and str(run) in out, err
    assert ("new tasks" in out) if algo == "maml" else ("over 2 episodes" in out)
    code, out, err = run_main(capsys, "plot", str(run), "--out", str(tmp_path / "c.png"))
    assert code == 0 and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG", err
    if algo == "maml":  # a meta-policy acts per task: nothing to record on its own
        code, _, err = run_main(capsys, "record", str(run), "--out", str(tmp_path / "m.mp4"))
        assert code == 2 and "maml runs have no policy to record" in err


@pytest.mark.smoke
def test_nas_search_resume_eval_plot_and_record(tmp_path, capsys):
    logdir = tmp_path / "runs"
    code, out, err = run_main(capsys, "nas", "--budget", "3", "--epochs", "1", "--layers", "2",
                              "--subset", "100", "--logdir", str(logdir), "--progress", "false")
    assert code == 0 and "  1. " in out, err  # the leaderboard
    run = only_run(logdir)
    assert json.loads((run / "config.json").read_text())["algo"] == "nas"
    code, out, err = run_main(capsys, "nas", "--resume", str(run), "--budget", "4",
                              "--progress", "false")
    assert code == 0 and "4 candidates" in err and "3 cache hits" in err, err
    code, out, err = run_main(capsys, "eval", str(run), "--checkpoint", "last")
    assert code == 0 and "(4 candidates)" in out and "  1. " in out, err
    code, _, err = run_main(capsys, "plot", str(run), "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG", err
    code, _, err = run_main(capsys, "record", str(run), "--out", str(tmp_path / "s.mp4"))
    assert code == 2 and not (tmp_path / "s.mp4").exists()
    assert_one_line_error(err)
    code, _, err = run_main(capsys, "nas", "--resume", str(run), "--searcher", "random")
    assert code == 2 and "cannot change searcher" in err
    assert_one_line_error(err)


@pytest.mark.smoke
def test_a_diverged_run_exits_1_and_says_how_to_resume(tmp_path, capsys):
    code, _, err = run_main(capsys, "train", "dqn", "--env", "gymlab_test/NaNReward-v0",
                            "--env-kwargs", '{"after": 400}', "--learning-starts", "100",
                            "--total-steps", "3000", "--eval-every", "200", "--eval-episodes",
                            "1", "--logdir", str(tmp_path), "--progress", "false")
    assert code == 1, err
    assert "nan" in err and "resume with: gymlab train --resume" in err
    assert "Traceback" not in err
