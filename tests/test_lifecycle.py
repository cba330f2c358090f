"""Unit tests of the one run lifecycle (gymlab.core.algorithm), on a toy algorithm that
scores itself: what every algorithm gets from it without writing any of it."""

import json
import os
import signal
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from gymlab.core.algorithm import Algorithm
from gymlab.core.config import require
from gymlab.core.errors import CheckpointError, EnvError, UserError
from gymlab.core.evaluation import EvalResult
from gymlab.core.plot import plot_runs
from gymlab.core.session import NonFiniteLoss, Session


@dataclass(frozen=True)
class CountConfig:
    """A counter that climbs towards a target."""

    iterations: int = 10
    """Iterations to run."""
    increment: float = 1.0
    """What each iteration adds to the score."""
    fail_at: int = -1
    """Raise an EnvError at this iteration (-1: never)."""
    diverge_at: int = -1
    """Raise NonFiniteLoss at this iteration (-1: never)."""
    signal_at: int = -1
    """Send SIGTERM to this process at this iteration (-1: never)."""

    def __post_init__(self) -> None:
        require(self.iterations > 0, f"iterations must be positive, got {self.iterations}")


class Count(Algorithm):
    algo = "count"
    Config = CountConfig
    default_env = "Counter-v0"
    unit = "iteration"
    score_name = "count"
    scores_itself = True
    RUN_DEFAULTS = {"eval_every": 0, "total_steps": 10**9}
    TUNED = {"Counter-v0": {"increment": 2.0}, "Other-v0": {"seed": 7}}
    RESUMABLE = Algorithm.RESUMABLE | {"iterations"}

    def _build(self) -> None:
        self.value = 0.0
        self.rng = np.random.default_rng(self.run_config.seed)
        self.noise: list[float] = []

    def progress_total(self) -> int:
        return self.config.iterations

    def _learn(self, session: Session) -> None:
        cfg = self.config
        while self.step < cfg.iterations and not session.stop:
            if self.step == cfg.fail_at:
                raise EnvError(f"Counter-v0 raised at step {self.step}: boom")
            if self.step == cfg.diverge_at:
                raise NonFiniteLoss("the count became nan")
            if self.step == cfg.signal_at:
                os.kill(os.getpid(), signal.SIGTERM)
            self.value += cfg.increment
            self.noise.append(float(self.rng.random()))
            self.step += 1
            session.log(self.step, {"count/value": self.value})
            session.report(self.step, EvalResult(np.array([self.value]), np.array([1])))
            session.on_step(self.step)

    def _weights(self) -> dict[str, Any]:
        return {"value": self.value}

    def _training_state(self) -> dict[str, Any]:
        return {"noise": list(self.noise), "rng": self.rng.bit_generator.state}

    def _load(self, weights: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.value = float(weights["value"])
        if state is not None:
            self.noise = list(state["noise"])
            self.rng.bit_generator.state = state["rng"]


def count(tmp_path, **overrides: Any) -> Count:
    return Count(logdir=str(tmp_path), progress=False, **overrides)


def test_defaults_layer_run_defaults_then_tuned_then_user(tmp_path):
    algo = count(tmp_path)
    assert algo.run_config.env == "Counter-v0" and algo.run_config.eval_every == 0
    assert algo.config.increment == 2.0  # tuned for the default env
    assert count(tmp_path, increment=5.0).config.increment == 5.0
    assert Count("Other-v0", logdir=None).run_config.seed == 7
    with pytest.raises(UserError, match="did you mean increment"):
        count(tmp_path, incremnt=1.0)


def test_run_directory_best_and_last_and_config(tmp_path):
    algo = count(tmp_path, iterations=3).learn()
    assert (algo.outcome, algo.exit_code, algo.value) == ("completed", 0, 6.0)
    config = json.loads((algo.run.path / "config.json").read_text())
    assert config["algo"] == "count" and config["unit"] == "iteration"
    assert config["score"] == "count" and config["count"]["iterations"] == 3
    assert algo.run.path.name.startswith("count-Counter-v0-")
    assert Count.load(algo.run.checkpoint("best")).value == 6.0
    assert Count.load(algo.run.path).value == 6.0  # a run directory: its best.pt


def test_stop_reward_solves(tmp_path):
    algo = count(tmp_path, iterations=10, stop_reward=4.0).learn()
    assert (algo.outcome, algo.exit_code, algo.step) == ("solved", 0, 2)


def test_resume_continues_exactly_and_refuses_other_settings(tmp_path):
    whole = count(tmp_path / "a", iterations=6).learn()
    part = count(tmp_path / "b", iterations=3).learn()
    with pytest.raises(UserError, match="cannot change increment"):
        Count.resume(part.run.path, increment=3.0)
    resumed = Count.resume(part.run.path, iterations=6).learn()
    assert resumed.step == 6 and resumed.noise == whole.noise and resumed.value == whole.value
    steps = [json.loads(line)["step"] for line in
             (part.run.path / "progress.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 6


def test_resume_of_another_algorithm_or_no_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"algo": "dqn"}))
    with pytest.raises(UserError, match="is a dqn run, not a count run"):
        Count.resume(run)
    (run / "config.json").write_text(json.dumps({"algo": "count"}))
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        Count.resume(run)


def test_sigterm_saves_and_exits_143(tmp_path, capsys):
    algo = count(tmp_path, iterations=10, signal_at=4).learn()
    # the iteration under way when the signal came finishes, then the run stops
    assert (algo.outcome, algo.exit_code, algo.step) == ("interrupted", 143, 5)
    assert Count.load(algo.run.checkpoint("last")).step == 5
    assert "resume with: gymlab train --resume" in capsys.readouterr().err
    assert Count.resume(algo.run.path).learn().step == 10


@pytest.mark.parametrize(("field", "outcome", "words"), [
    ("fail_at", "failed", "Counter-v0 raised at step 3"),
    ("diverge_at", "diverged", "the count became nan"),
])
def test_failures_keep_the_last_checkpoint_and_exit_1(tmp_path, capsys, field, outcome, words):
    algo = count(tmp_path, iterations=10, **{field: 3}).learn()
    assert (algo.outcome, algo.exit_code) == (outcome, 1)
    err = capsys.readouterr().err
    assert words in err and "kept the last good checkpoint" in err
    assert Count.load(algo.run.checkpoint("last")).step == 3


def test_evaluation_callback_stops(tmp_path):
    seen = []
    algo = count(tmp_path, iterations=10).learn(on_eval=lambda s, r: seen.append(s) or s >= 2)
    assert (algo.outcome, seen) == ("stopped", [1, 2])


def test_plot_of_a_self_scoring_run_is_its_score_curve(tmp_path):
    algo = count(tmp_path, iterations=4).learn()
    out = plot_runs([algo.run.path], tmp_path / "plot.png")
    assert out.stat().st_size > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "progress.jsonl").write_text(json.dumps({"step": 1, "other": 2}) + "\n")
    with pytest.raises(UserError, match="no returns or scores to plot"):
        plot_runs([empty], tmp_path / "empty.png")


def test_record_and_evaluate_say_what_the_algorithm_cannot_do(tmp_path):
    algo = count(tmp_path, iterations=1)
    with pytest.raises(UserError, match="count runs have no policy to record"):
        algo.record(tmp_path / "x.mp4")
    with pytest.raises(UserError, match="count runs have no policy to act with"):
        algo.act(None)
    with pytest.raises(UserError, match="cannot be evaluated"):
        algo.eval_lines("x", 1, None)


def test_an_exact_run_path_is_made_and_a_used_one_refused(tmp_path):
    class Fixed(Count):
        def run_path(self):
            return tmp_path / "exact"

    algo = Fixed(logdir=str(tmp_path), progress=False, iterations=2).learn()
    assert algo.run.path == tmp_path / "exact" and (algo.run.path / "config.json").is_file()
    with pytest.raises(UserError, match="already exists and is not an empty folder"):
        Fixed(logdir=str(tmp_path), progress=False).learn()
