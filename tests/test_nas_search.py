"""The network search as a gymlab Algorithm: its score, stop rule, signals, resume, plot."""

import json
import os
import signal

import pytest

from gymlab.core.errors import UserError
from gymlab.nas import NASSearch

TABLE = {"evaluator": "table", "layers": 3, "progress": False}
"""Lookups in the shipped table: searches of many candidates without training."""


def _signal_at(candidate: int, signum: int):
    def on_eval(step, result):
        if step == candidate:
            os.kill(os.getpid(), signum)
    return on_eval


def test_the_score_is_the_best_valid_accuracy_so_far_per_candidate(tmp_path):
    with NASSearch(**TABLE, budget=12, round_size=4, logdir=str(tmp_path)) as search:
        search.learn()
    assert search.outcome == "completed" and search.step == 12
    rows = [json.loads(line) for line in (search.run.path / "progress.jsonl").open()]
    curve = [(r["step"], r["eval/return_mean"]) for r in rows if "eval/return_mean" in r]
    assert [step for step, _ in curve] == list(range(1, 13))
    best = 0.0
    for c, (_, score) in zip(search.result.candidates, curve):
        if c.result.ok and not c.screened:
            best = max(best, c.result.best_valid_acc)
        assert score == pytest.approx(best)
    config = json.loads((search.run.path / "config.json").read_text())
    assert config["algo"] == "nas" and config["unit"] == "candidate"
    assert config["score"] == "best_valid_acc" and "seed" in config["run"]
    for name in ("best.pt", "last.pt"):
        assert (search.run.path / "checkpoints" / name).exists()
    for name in ("leaderboard.csv", "report.png"):
        assert (search.run.path / name).exists()


def test_a_nas_run_plots_its_search_curve(tmp_path):
    from gymlab.core.plot import plot_runs

    with NASSearch(**TABLE, budget=6, logdir=str(tmp_path)) as search:
        search.learn()
    out = plot_runs([str(search.run.path)], str(tmp_path / "curve.png"))
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_stop_reward_ends_the_search_when_reached():
    with NASSearch(**TABLE, budget=400, round_size=1, stop_reward=90.0, logdir=None) as search:
        search.learn()
    assert search.outcome == "solved" and search.exit_code == 0
    assert search.step < 400 and search.result.best.result.best_valid_acc >= 90.0


def test_sigterm_ends_the_search_with_143_and_it_resumes(tmp_path):
    with NASSearch(**TABLE, budget=10, round_size=2, logdir=str(tmp_path)) as search:
        search.learn(on_eval=_signal_at(3, signal.SIGTERM))
    assert search.outcome == "interrupted" and search.exit_code == 143
    assert search.step == 4  # the round of the signal is finished
    assert search.result.exit_code == 143
    with NASSearch.resume(search.run.path, budget=12) as resumed:
        resumed.learn()
    assert resumed.outcome == "completed" and resumed.step == 12
    first = [c.ids for c in search.result.candidates]
    assert [c.ids for c in resumed.result.candidates[:4]] == first
    with pytest.raises(UserError, match="cannot change searcher"):
        NASSearch.resume(search.run.path, searcher="random")


def test_eval_lines_give_the_leaderboard(tmp_path):
    with NASSearch(**TABLE, budget=8, logdir=str(tmp_path)) as search:
        search.learn()
    loaded = NASSearch.load(search.run.path / "checkpoints" / "last.pt")
    lines = loaded.eval_lines("last.pt", episodes=1, seed=None)
    assert lines[0].startswith("nas-evolution-digits last.pt (8 candidates)")
    best = search.result.best
    assert f"{best.result.best_valid_acc:6.2f}%" in lines[1]
    assert best.result.architecture in lines[1]


def test_the_env_and_its_settings_are_checked_before_any_file(tmp_path):
    for options, message in [({"env": "CartPole-v1"}, "nas searches gymlab/NAS-v0"),
                             ({"env_kwargs": {"layers": 4}}, "set them as nas options"),
                             ({"env_kwargs": {"memroy": 4}}, "memroy: not an argument")]:
        with pytest.raises(UserError, match=message):
            NASSearch(**TABLE, logdir=str(tmp_path / "runs"), **options)
    assert not (tmp_path / "runs").exists()


def test_a_search_written_before_the_run_lifecycle_resumes(tmp_path):
    from gymlab.core.config import to_dict
    from gymlab.nas.config import NASConfig

    run = tmp_path / "nas-evolution-digits-20260101-000000"
    run.mkdir()
    old = {"algo": "nas-evolution", "nas": {**to_dict(NASConfig(evaluator="table", layers=3,
                                                                  budget=5)),
                                            "seed": 1, "logdir": str(tmp_path),
                                            "progress": False}}
    (run / "config.json").write_text(json.dumps(old))
    with NASSearch.resume(run) as search:
        search.learn()
    assert search.outcome == "completed" and search.step == 5
    assert search.run_config.seed == 1 and search.run_config.env == "gymlab/NAS-v0"
