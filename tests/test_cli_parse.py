"""How the `gymlab` command line is parsed: misspelled flags and names, bare bool flags, the
two stages, and what `--help` imports. Nothing here trains."""

import json
import subprocess
import sys

import pytest

from gymlab.cli import COMMANDS, main, meta, nas, train, tune
from tests.test_cli import assert_one_line_error, run_main


@pytest.mark.parametrize("args, message", [
    (["train", "dqn", "--totl-steps", "5"],
     "unrecognized argument --totl-steps; did you mean --total-steps?"),
    (["train", "ppo", "--learning_rate", "0.1"],
     "unrecognized argument --learning_rate; did you mean --learning-rate?"),
    (["nas", "--budgett", "3"], "unrecognized argument --budgett; did you mean --budget?"),
    (["nas", "--budget", "3", "--layrs", "2", "build-table", "--out", "t.npz"],
     "unrecognized argument --layrs; did you mean --layers?"),
    (["nas", "build-table", "--out", "t.npz", "--seedz", "2"],
     "unrecognized argument --seedz; did you mean --seeds?"),
    (["meta", "maml", "--num-batchs", "3"],
     "unrecognized argument --num-batchs; did you mean --num-batches?"),
    (["meta", "eval", "run", "--grad-stesp", "3"],
     "unrecognized argument --grad-stesp; did you mean --grad-steps?"),
    (["tune", "dqn", "--gird", "gamma=[0.9]"],
     "unrecognized argument --gird; did you mean --grid?"),
    (["tune", "maml", "--fast-lrr", "0.1"],
     "unrecognized argument --fast-lrr; did you mean --fast-lr?"),
    (["tune", "--sampels", "2", "dqn"],
     "unrecognized argument --sampels; did you mean --samples?"),
    (["eval", "run", "--episods", "3"],
     "unrecognized argument --episods; did you mean --episodes?"),
    (["train", "dqn", "--bogus", "3"], "unrecognized argument --bogus (see"),
])
def test_a_misspelled_flag_is_named_with_the_closest(capsys, args, message):
    code, _, err = run_main(capsys, *args)
    assert code == 2
    assert_one_line_error(err)
    assert message in err and "invalid choice" not in err


@pytest.mark.parametrize("args, message", [
    (["trian"], "invalid choice: 'trian' (choose from train, eval"),
    (["trian"], "did you mean train?"),
    (["train", "dqm"], "argument ALGO: invalid choice: 'dqm'"),
    (["train", "dqm"], "did you mean dqn?"),
    (["tune", "mam"], "did you mean maml?"),
    (["nas", "build-tabel", "--out", "t.npz"], "did you mean build-table?"),
    (["meta", "mamll"], "did you mean maml?"),
    ([], "a command is needed"),
    (["train"], "train needs an algorithm"),
    (["tune"], "tune needs an algorithm"),
    (["meta"], "meta needs a command"),
    (["train", "--total-steps", "5", "dqn"], "flags follow the algorithm or the run"),
])
def test_a_misspelled_name_is_one_line(capsys, args, message):
    code, _, err = run_main(capsys, *args)
    assert code == 2
    assert_one_line_error(err)
    assert message in err


def test_bool_flags_stand_alone_for_true():
    assert train.parse(["dqn", "--double-q"]).double_q is True
    assert train.parse(["dqn", "--double-q", "false"]).double_q is False
    assert train.parse(["dqn", "--double-q=no", "--progress"]).progress is True
    assert meta.parse(["maml", "--first-order"]).first_order is True
    assert not hasattr(train.parse(["dqn"]), "double_q")  # unset: the tuned table decides


def test_unset_flags_stay_out_of_the_namespace():
    args = train.parse(["ppo", "--env", "Pendulum-v1", "--num-envs", "2"])
    assert args.algo == "ppo" and args.resume is None
    assert {k for k in vars(args) if k not in ("algo", "resume")} == {"env", "num_envs"}


def fake_run(tmp_path, algo):
    run = tmp_path / f"{algo}-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"algo": algo}))
    return run


def test_resume_takes_the_runs_algorithm_flags_wherever_they_stand(tmp_path, capsys):
    run = fake_run(tmp_path, "ga")
    args = train.parse(["--resume", str(run), "--generations", "3", "--progress", "false"])
    assert (args.resume, args.generations, args.progress) == (str(run), 3, False)
    args = train.parse(["--resume", str(run), "--generations", "3", "--resume", str(run)])
    assert args.generations == 3 and args.algo is None
    args = train.parse(["ga", "--resume", str(run), "--generations", "4"])
    assert (args.algo, args.generations) == ("ga", 4)
    code, _, err = run_main(capsys, "train", "--resume", str(run), "--generatons", "3")
    assert code == 2 and "did you mean --generations?" in err
    assert_one_line_error(err)


def test_resume_refusals_are_one_line(tmp_path, capsys):
    cases = [(["train", "--resume", str(tmp_path / "none")], "is not a gymlab run directory"),
             (["train", "--resume", str(fake_run(tmp_path, "a2c"))], "unknown algorithm 'a2c'"),
             (["train", "dqn", "--resume", str(fake_run(tmp_path, "ppo"))],
              "is a ppo run, not a dqn run"),
             (["meta", "maml", "--resume", str(fake_run(tmp_path, "es"))],
              "is a es run, not a maml run"),
             (["nas", "--resume", str(tmp_path / "ppo-run"), "build-table", "--out", "t.npz"],
              "takes no --resume")]
    for args, message in cases:
        code, _, err = run_main(capsys, *args)
        assert code == 2 and message in err, (args, err)
        assert_one_line_error(err)


def test_nas_flags_and_build_table():
    args = nas.parse(["--budget", "3", "--layers", "2", "build-table", "--out", "t.npz"])
    assert (args.nas_command, args.budget, args.layers, args.out, args.seeds) == (
        "build-table", 3, 2, "t.npz", 2)
    args = nas.parse(["--searcher", "ppo"])
    assert args.nas_command is None and args.searcher == "ppo"


def test_tune_metric_choices_come_from_the_algorithm(capsys):
    args = tune.parse(["nas", "--choice", "searcher=evolution,random", "--metric",
                       "best_valid_acc"])
    assert (args.algo, args.metric, args.env) == ("nas", "best_valid_acc", None)
    assert args.space == [("choice", "searcher=evolution,random")]
    args = tune.parse(["--grid", "gamma=[0.9]", "dqn", "--grid", "batch_size=[32]",
                       "--double-q", "--max-steps", "500"])
    assert args.space == [("grid", "gamma=[0.9]"), ("grid", "batch_size=[32]")]
    assert args.double_q is True and args.total_steps == 500
    code, _, err = run_main(capsys, "tune", "dqn", "--metric", "best_valid_acc")
    assert code == 2 and "invalid choice: 'best_valid_acc'" in err


def test_nothing_reads_sys_argv(capsys, monkeypatch):
    """Each command parses only what main() is given."""
    monkeypatch.setattr(sys, "argv", ["gymlab", "nas", "--resume", "elsewhere"])
    code, out, _ = run_main(capsys, "train", "dqn", "--help")
    assert code == 0 and "--double-q" in out and "--budget" not in out
    code, out, _ = run_main(capsys, "meta", "maml", "--help")
    assert code == 0 and "--first-order" in out and "usage: gymlab meta maml" in out


def test_every_command_has_help(capsys):
    for name, command in COMMANDS.items():
        assert command.HELP and callable(command.parse) and callable(command.run)
        code, out, _ = run_main(capsys, name, "--help")
        assert code == 0 and f"usage: gymlab {name}" in out, name
    code, out, _ = run_main(capsys, "--help")
    assert all(f"  {name} " in out for name in COMMANDS)
    assert main.__module__ == "gymlab.cli"


@pytest.mark.parametrize("command", ["train", "tune"])
def test_every_algorithm_has_flags_for_train_and_tune(capsys, command):
    from gymlab.registry import ALGORITHMS

    for algo in ALGORITHMS:
        code, out, err = run_main(capsys, command, algo, "--help")
        assert code == 0 and f"usage: gymlab {command} {algo}" in out, (algo, err)
        assert "--progress" in out or command == "tune"


def test_help_imports_no_algorithm():
    script = """
import sys
from gymlab.cli import main
for argv in (["--help"], ["train", "--help"], ["eval", "--help"], ["plot", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
print(sorted(m for m in sys.modules if m == "torch" or m.startswith(("gymlab.agents",
      "gymlab.nas.", "gymlab.core.run"))))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_ctrl_c_in_a_command_that_is_not_a_run_exits_130_in_one_line(capsys, monkeypatch):
    import gymlab.nas.table

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gymlab.nas.table, "build_table", interrupted)
    code, _, err = run_main(capsys, "nas", "--layers", "1", "--epochs", "1", "build-table",
                            "--out", "unused.npz")
    assert code == 130 and err.strip().splitlines()[-1] == "gymlab: nas interrupted"
    assert "Traceback" not in err


def test_version_comes_from_the_package_metadata(capsys):
    from importlib import metadata

    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.strip() == f"gymlab {metadata.version('gymlab')}"
