"""`gymlab tune ALGO` for every algorithm: what the command hands gymlab.tune.run (the search
itself, with Ray, is tests/test_tune.py's), and its one-line refusals before Ray starts."""

from types import SimpleNamespace

import pytest

import gymlab.tune
from gymlab.tune.space import Choice, Grid
from gymlab.tune.validate import check_space
from tests.test_cli import assert_one_line_error, run_main


@pytest.fixture
def searches(monkeypatch):
    """gymlab.tune.run validating the search as it does, then stopping before Ray."""
    calls = []

    def run(algo, env, space, **options):
        fixed = {k: v for k, v in options.items() if k not in (
            "metric", "mode", "samples", "scheduler", "search", "seed", "cpus_per_trial",
            "logdir", "ray_address", "progress")}
        plan = check_space(algo, env, space, fixed, mode=options["mode"],
                           samples=options["samples"],
                           **{k: options[k] for k in ("metric",) if k in options})
        calls.append(SimpleNamespace(algo=algo, env=env, space=space, plan=plan, **options))
        return SimpleNamespace(summary=lambda: ["best: trial-000"], interrupted=0, best={})

    monkeypatch.setattr(gymlab.tune, "run", run)
    return calls


@pytest.mark.smoke
def test_tune_maml_and_nas(searches, capsys, tmp_path):
    code, out, err = run_main(capsys, "tune", "maml", "--env", "gymlab/Navigation2D-v0",
                              "--grid", "fast_lr=[0.1,0.5]", "--meta-batch-size", "2",
                              "--metric", "eval_return", "--logdir", str(tmp_path))
    assert code == 0 and "best: trial-000" in out, err
    maml = searches[-1]
    assert (maml.algo, maml.env, maml.meta_batch_size) == ("maml", "gymlab/Navigation2D-v0", 2)
    assert maml.space == {"fast_lr": Grid(("0.1", "0.5"))}  # typed by check_space
    code, _, err = run_main(capsys, "tune", "nas", "--choice", "searcher=evolution,random",
                            "--metric", "best_valid_acc", "--subset", "100", "--logdir",
                            str(tmp_path))
    assert code == 0, err
    nas = searches[-1]
    assert (nas.algo, nas.env, nas.metric) == ("nas", None, "best_valid_acc")
    assert nas.plan.env == "gymlab/NAS-v0" and nas.plan.mode == "max"  # the algorithm's
    assert nas.space == {"searcher": Choice(("evolution", "random"))}
    assert not any(tmp_path.iterdir())


@pytest.mark.smoke
def test_tune_maml_takes_a_family_short_name(searches, capsys, tmp_path):
    code, _, err = run_main(capsys, "tune", "maml", "--env", "Navigation2D-v0", "--grid",
                            "fast_lr=[0.1,0.5]", "--metric", "eval_return", "--logdir",
                            str(tmp_path))
    assert code == 0, err


@pytest.mark.smoke
@pytest.mark.parametrize("args, message", [
    (["maml", "--env", "gymlab/Navigation2D-v0", "--grid", "fast_lrr=[0.1,0.5]"],
     "did you mean fast_lr"),
    (["maml", "--env", "CartPole-v1", "--grid", "fast_lr=[0.1]"], "not a task family"),
    (["nas", "--choice", "searcher=evolution,bayes"], "expected one of"),
    (["nas", "--metric", "accuracy"], "invalid choice: 'accuracy'"),
    (["es", "--ray-address", "127.0.0.1:1", "--grid", "sigma=[0.1]", "--stop-reward", "50"],
     "cannot reach"),
])
def test_tune_refusals_are_one_line_before_ray(capsys, tmp_path, args, message):
    code, _, err = run_main(capsys, "tune", *args, "--logdir", str(tmp_path))
    assert code == 2 and message in err, err
    assert_one_line_error(err)
    assert not any(tmp_path.iterdir())
