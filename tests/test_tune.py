"""gymlab tune: the search-space parser and validation (fast, no Ray), and small real searches
on CartPole with DQN through the CLI (`-m smoke`, skipped without Ray)."""

import csv
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gymlab import tune
from gymlab.core.errors import UserError
from tests.test_cli import assert_one_line_error, gymlab, run_main

TINY = ["--max-steps", "1500", "--eval-every", "500", "--eval-episodes", "2",
        "--learning-starts", "200", "--stop-reward", "475"]


# -- the parser ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, text, expected", [
    ("grid", "hidden_sizes=[[32],[64]]", ("hidden_sizes", tune.Grid(("[32]", "[64]")))),
    ("grid", "activation=[linear,relu]", ("activation", tune.Grid(("linear", "relu")))),
    ("grid", "hidden_sizes=[[32, 32], [64]]", ("hidden_sizes", tune.Grid(("[32, 32]", "[64]")))),
    ("grid", 'activation=["linear", "tanh"]', ("activation", tune.Grid(("linear", "tanh")))),
    ("grid", 'env_kwargs=[{"a":1,"b":2},{}]', ("env_kwargs", tune.Grid(('{"a":1,"b":2}', "{}")))),
    ("choice", "batch_size=32,64,128", ("batch_size", tune.Choice(("32", "64", "128")))),
    ("choice", "double-q=true,false", ("double_q", tune.Choice(("true", "false")))),
    ("uniform", "gamma=0.9:0.999", ("gamma", tune.Uniform(0.9, 0.999))),
    ("loguniform", "learning_rate=1e-5:1e-2", ("learning_rate", tune.LogUniform(1e-5, 1e-2))),
    ("randint", "batch_size=16:256", ("batch_size", tune.RandInt(16, 256))),
])
def test_parse_spec(kind, text, expected):
    assert tune.parse_spec(kind, text) == expected


@pytest.mark.parametrize("kind, text, message", [
    ("grid", "learning_rate", "--grid: expected KEY=a,b,c, got 'learning_rate'"),
    ("uniform", "=1:2", "--uniform: expected KEY=LOW:HIGH"),
    ("uniform", "learning_rate=1e-5", "expected LOW:HIGH, got '1e-5'"),
    ("uniform", "learning_rate=1:2:3", "expected LOW:HIGH"),
    ("uniform", "learning_rate=abc:1", "expected a number, got 'abc'"),
    ("uniform", "learning_rate=1e-5:", "expected a number, got ''"),
    ("uniform", "learning_rate=nan:1", "expected a finite number"),
    ("uniform", "learning_rate=1e-2:1e-5", "the lower bound 0.01 must be below the upper bound"),
    ("uniform", "gamma=0.9:0.9", "must be below"),
    ("loguniform", "learning_rate=0:1", "bounds must be positive, got 0"),
    ("randint", "batch_size=1.5:3", "expected an integer, got '1.5'"),
    ("randint", "batch_size=64:16", "must be below"),
    ("grid", "hidden_sizes=[[32],[64]", "unbalanced brackets"),
    ("grid", "hidden_sizes=[32]]", "unbalanced brackets"),
    ("grid", "activation=[]", "needs at least one value"),
    ("choice", "activation=relu,,tanh", "empty value"),
])
def test_parse_spec_rejects(kind, text, message):
    with pytest.raises(UserError, match=None) as info:
        tune.parse_spec(kind, text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# -- validation against the configs -------------------------------------------------------------
def check(space, fixed=None, **kwargs):
    return tune.check_space("dqn", "CartPole-v1", space, fixed or {}, **kwargs)


def spec(kind, text):
    return dict([tune.parse_spec(kind, text)])


def test_the_issues_search_has_20_trials_of_typed_values():
    space = {**spec("grid", "hidden_sizes=[[32],[64]]"), **spec("grid", "activation=[linear,relu]"),
             **spec("uniform", "learning_rate=1e-5:1e-2")}
    plan = check(space, samples=5)
    assert plan.trials == 20 and plan.grid_size == 4 and plan.seeds_vary
    assert plan.space["hidden_sizes"] == tune.Grid(((32,), (64,)))
    assert plan.max_steps == 100_000 and plan.mode == "min"  # the tuned table's CartPole budget
    assert check(space, samples=5, search="optuna").seeds_vary is False
    api = check({"hidden_sizes": tune.grid([32], (64, 64)), "gamma": 0.98,
                 "batch_size": tune.randint(16, 64)}, metric="eval_return")
    assert api.space["hidden_sizes"] == tune.Grid(((32,), (64, 64)))
    assert api.fixed["gamma"] == 0.98 and api.mode == "max"


@pytest.mark.parametrize("space, message", [
    (spec("uniform", "lr=1e-5:1e-2"),
     "unknown config field 'lr' for dqn; did you mean learning_rate?"),
    (spec("choice", "gama=0.9,0.99"), "did you mean gamma?"),
    (spec("grid", "bogus=[1,2]"), "unknown config field 'bogus' for dqn"),
    (spec("grid", "env=[CartPole-v1,Acrobot-v1]"), "cannot search over env"),
    (spec("grid", "total_steps=[1000,2000]"), "cannot search over total_steps: set the budget"),
    (spec("grid", "activation=[linear,swish]"), "--grid activation: expected one of relu"),
    (spec("grid", "batch_size=[0,32]"), "--grid batch_size: batch_size must be positive, got 0"),
    (spec("grid", "batch_size=[32,abc]"), "--grid batch_size: expected int, got 'abc'"),
    (spec("grid", "hidden_sizes=[[32],[32]]"), "a value is repeated"),
    (spec("grid", "eval_every=[0,500]"), "eval_every must be positive"),
    (spec("uniform", "batch_size=16:64"), "batch_size is not a float field; use --randint"),
    (spec("uniform", "activation=1:2"), "use --grid or --choice"),
    (spec("randint", "hidden_sizes=1:4"), "not a numeric field"),
    (spec("uniform", "learning_rate=-1:1"),
     "--uniform learning_rate: learning_rate must be positive"),
    (spec("uniform", "gamma=0.5:1.5"), "gamma must be in [0, 1]"),
    ({"learning_rate": tune.uniform(1e-2, 1e-5)}, "must be below the upper bound"),
    ({"learning_rate": tune.uniform("a", 1)}, "bounds must be floats"),
    ({"batch_size": tune.grid(32, 64.5)}, "batch_size: expected int, got 64.5"),
    ({"learning_rate": tune.grid()}, "needs at least one value"),
])
def test_check_space_rejects(space, message):
    with pytest.raises(UserError) as info:
        check(space)
    assert message in str(info.value)


def test_default_metric_is_time_to_solve_where_a_run_can_solve_else_the_score():
    lr = {"learning_rate": tune.grid(1e-3)}
    assert check(lr).metric == "steps_to_solve"  # CartPole's tuned stop reward
    plan = check(lr, {"stop_reward": None})
    assert (plan.metric, plan.mode) == ("eval_return", "max")
    nas = tune.check_space("nas", None, {"searcher": tune.grid("evolution", "random")}, {},
                           build_agent=False)
    assert (nas.env, nas.metric, nas.mode) == ("gymlab/NAS-v0", "best_valid_acc", "max")


def test_check_space_rejects_bad_searches():
    lr = spec("loguniform", "learning_rate=1e-5:1e-2")
    cases = [
        (dict(space=lr, fixed={"learning_rate": 1e-3}), "learning_rate is both searched and fixed"),
        (dict(space=lr, fixed={"eval_every": 0}), "a search needs evaluations"),
        (dict(space=lr, fixed={"stop_reward": None}, metric="steps_to_solve"),
         "metric steps_to_solve needs a stop reward"),
        (dict(space=lr, metric="reward"), "unknown metric 'reward'"),
        (dict(space={}, search="optuna"), "search optuna needs at least one searched field"),
        (dict(space=lr, fixed={"batch_sise": 3}), "did you mean batch_size?"),
    ]
    for kwargs, message in cases:
        with pytest.raises(UserError, match=None) as info:
            check(kwargs.pop("space"), kwargs.pop("fixed", None), **kwargs)
        assert message in str(info.value), (message, info.value)
    with pytest.raises(UserError, match="unknown algorithm 'dqm'.*did you mean dqn"):
        tune.check_space("dqm", "CartPole-v1", lr, {})
    with pytest.raises(UserError, match="Discrete or MultiDiscrete"):  # the agent is built once
        tune.check_space("dqn", "MountainCarContinuous-v0", lr, {"stop_reward": 0.0})


def test_ranking_puts_solved_trials_first_and_failed_last():
    def row(name, status="completed", outcome="completed", steps=1000, ret=10.0):
        return {"trial": name, "status": status, "outcome": outcome, "steps_to_solve": steps,
                "eval_return": ret}

    rows = [row("a", steps=1000, ret=400.0), row("b", outcome="solved", steps=800, ret=480.0),
            row("c", status="failed", steps=math.nan, ret=math.nan),
            row("d", outcome="solved", steps=600, ret=476.0), row("e", steps=1000, ret=450.0),
            row("f", status="stopped", outcome="running", steps=1000, ret=20.0)]
    by_steps = sorted(rows, key=tune.rank_key("steps_to_solve", "min"))
    assert [r["trial"] for r in by_steps] == ["d", "b", "e", "a", "f", "c"]
    by_return = sorted(rows, key=tune.rank_key("eval_return", "max"))
    assert [r["trial"] for r in by_return] == ["b", "d", "e", "a", "f", "c"]


def test_bad_cli_input_is_one_line_and_writes_nothing(capsys, tmp_path):
    base = ["tune", "dqn", "--logdir", str(tmp_path)]
    for args, message in [
        (["--uniform", "lr=1e-5:1e-2"], "did you mean learning_rate?"),
        (["--grid", "hidden_sizes=[[32],[64]"], "unbalanced brackets"),
        (["--uniform", "learning_rate=x:1"], "expected a number, got 'x'"),
        (["--uniform", "learning_rate=1:0.1"], "must be below the upper bound"),
        (["--grid", "gamma=[0.9]", "--choice", "gamma=0.9,0.99"], "gamma is searched twice"),
        (["--grid", "gamma=[0.9]", "--metric", "speed"], "invalid choice: 'speed'"),
        (["--grid", "gamma=[0.9]", "--env", "CartPol-v1"], "did you mean CartPole-v1"),
        (["--grid", "gamma=[0.9]", "--max-steps", "0"], "expected a positive integer"),
    ]:
        code, _, err = run_main(capsys, *base, *args)
        assert code == 2, (args, err)
        assert_one_line_error(err)
        assert message in err, (args, err)
    code, _, err = run_main(capsys, "tune", "dqm")
    assert code == 2 and "invalid choice: 'dqm'" in err
    assert not any(tmp_path.iterdir())


def test_cli_without_tune_never_imports_ray(tmp_path):
    script = f"""
import sys
from gymlab.cli import main
for argv in (["--help"], ["tune", "--help"], ["tune", "dqn", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
code = main(["train", "dqn", "--total-steps", "300", "--eval-every", "0", "--learning-starts",
             "100", "--progress", "false", "--logdir", {str(tmp_path)!r}])
print(code, sorted(m for m in sys.modules if m == "ray" or m.startswith(("ray.", "optuna"))))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 []"


# -- real searches (Ray) -------------------------------------------------------------------------
HUGE = "[100000000,100000000]"  # a valid config whose network cannot be allocated


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    pytest.importorskip("ray")
    logdir = tmp_path_factory.mktemp("tune")
    start = time.perf_counter()
    result = gymlab("tune", "dqn", "--grid", f"hidden_sizes=[[16],[32],{HUGE}]",
                    "--logdir", str(logdir), *TINY)
    result.seconds = time.perf_counter() - start
    (folder,) = logdir.iterdir()
    with open(folder / "tune_results.csv") as f:
        rows = {row["hidden_sizes"]: row for row in csv.DictReader(f)}
    return result, folder, rows


@pytest.mark.smoke
def test_search_writes_results_run_directories_and_the_best_config(search):
    result, folder, rows = search
    assert result.returncode == 0, result.stderr
    assert folder.name.startswith("tune-dqn-CartPole-v1-")
    assert set(rows) == {"[16]", "[32]", HUGE}
    for sizes in ("[16]", "[32]"):
        row = rows[sizes]
        assert row["status"] == "completed" and row["outcome"] in ("completed", "solved")
        assert int(row["steps"]) == 1500 or row["outcome"] == "solved"
        assert int(row["steps_to_solve"]) <= 1500 and float(row["eval_return"]) > 0
        assert float(row["wall_to_solve"]) > 0 and row["error"] == ""
        run = Path(row["run_dir"])
        assert run.parent.parent == folder and run.parent.name.startswith("trial-")
        config = json.loads((run / "config.json").read_text())
        assert config["dqn"]["hidden_sizes"] == json.loads(sizes)
        assert config["run"]["torch_threads"] == 1 and config["run"]["seed"] == 0
        assert config["run"]["total_steps"] == 1500 and config["dqn"]["learning_starts"] == 200
        assert (run / "checkpoints" / "last.pt").exists() and (run / "progress.jsonl").exists()
    out = result.stdout
    assert "best: trial-" in out and "hidden_sizes=[16]" in out or "hidden_sizes=[32]" in out
    assert "run directory: " + str(folder) in out and "train it: gymlab train dqn" in out
    assert f"wrote {folder / 'tune_results.csv'}: 3 trials (2 completed, 1 failed)" in out
    # one line per trial event, no tracebacks from Ray when not on a terminal
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 10, \
        result.stderr


@pytest.mark.smoke
def test_a_crashing_trial_is_reported_failed_and_the_search_goes_on(search):
    result, folder, rows = search
    failed = rows[HUGE]
    assert failed["status"] == "failed" and "can't allocate memory" in failed["error"]
    assert failed["run_dir"] == "" and failed["steps"] == ""
    trial = next(p for p in folder.iterdir() if (p / "error.txt").exists())
    assert "Traceback" in (trial / "error.txt").read_text()
    assert "failed: trial-" in result.stdout and "FAILED" in result.stderr
    assert result.returncode == 0  # the other trials finished


@pytest.mark.smoke
def test_a_search_over_network_searches_ranks_by_their_score(tmp_path):
    """gymlab tune nas: the algorithm's own score as the metric, trials on Ray."""
    pytest.importorskip("ray")
    result = gymlab("tune", "nas", "--grid", "searcher=[evolution,random]", "--evaluator",
                    "table", "--layers", "3", "--budget", "12", "--metric", "best_valid_acc",
                    "--quiet", "--logdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (folder,) = tmp_path.iterdir()
    with open(folder / "tune_results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["searcher"] for row in rows} == {"evolution", "random"}
    scores = [float(row["best_valid_acc"]) for row in rows]
    assert scores == sorted(scores, reverse=True) and 50 < scores[0] <= 100
    assert all(row["status"] == "completed" and row["steps"] == "12" for row in rows)


@pytest.mark.smoke
def test_unreachable_ray_address_fails_fast():
    start = time.perf_counter()
    result = gymlab("tune", "dqn", "--grid", "gamma=[0.9,0.99]", "--ray-address", "127.0.0.1:1")
    assert time.perf_counter() - start < 60
    assert_one_line_error(result)
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in result.stderr


@pytest.mark.smoke
def test_ctrl_c_keeps_finished_trials(tmp_path):
    pytest.importorskip("ray")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gymlab", "tune", "dqn", "--grid", "hidden_sizes=[[16],[32]]",
         "--logdir", str(tmp_path), "--max-steps", "1000000", "--eval-every", "500",
         "--eval-episodes", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while not any("started" in line for line in lines):
        line = proc.stderr.readline()
        assert line, "".join(lines)
        lines.append(line)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(lines) + err
    assert "Traceback" not in err
    (folder,) = tmp_path.iterdir()
    with open(folder / "tune_results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["status"] for row in rows} <= {"interrupted"}
    assert f"wrote {folder / 'tune_results.csv'}" in out
