"""What a search maximises (accuracy, or accuracy against size under caps), the Pareto
fronts it reports, and where candidates train (--device)."""

import csv
import json

import pytest
import torch

from gymlab.core.errors import UserError
from gymlab.nas.config import NASConfig
from gymlab.nas.datasets import load_dataset
from gymlab.nas.evaluator import Evaluator, resolve_device
from gymlab.nas.objective import FAILED, INFEASIBLE, Objective, fitness, pareto_front
from gymlab.nas.report import leaderboard_lines, write_outputs
from gymlab.nas.results import Candidate, SearchResult
from gymlab.nas.search_space import load_space
from gymlab.nas.trainer import CandidateResult, TrainSettings, train_candidate


def _result(acc: float, params: int, flops: int = 1000, name: str = "",
            built: bool = True) -> CandidateResult:
    return CandidateResult(name or f"net{acc}-{params}", built, "" if built else "no",
                           params, flops, [1.0], [1.0], [acc] if built else [])


def test_accuracy_is_the_fitness_without_caps():
    config = NASConfig()
    assert fitness(_result(91.5, 10_000), config) == 91.5
    assert fitness(_result(0.0, 10, built=False), config) == FAILED


def test_the_tradeoff_charges_points_per_tenfold_size():
    config = NASConfig(objective="tradeoff", params_weight=2.0, flops_weight=1.0)
    small, large = _result(90.0, 1_000, 10_000), _result(92.5, 10_000, 100_000)
    assert fitness(small, config) == pytest.approx(90.0 - 2 * 3 - 1 * 4)
    # ten times larger costs 3 points here: 2.5 more accuracy is not enough
    assert fitness(small, config) > fitness(large, config)


@pytest.mark.parametrize("caps", [{"max_params": 5_000}, {"max_flops": 50_000}])
def test_infeasible_networks_rank_below_feasible_ones_and_failed_ones_lowest(caps):
    config = NASConfig(**caps)
    feasible = _result(10.0, 1_000, 10_000)
    near, far = _result(99.0, 6_000, 60_000), _result(99.0, 600_000, 6_000_000)
    scores = [fitness(r, config) for r in (feasible, near, far, _result(0, 1, built=False))]
    assert scores == sorted(scores, reverse=True)
    assert scores[1] < INFEASIBLE + 1e-9 and scores[3] == FAILED
    objective = Objective.from_config(config)
    assert objective.feasible(feasible) and not objective.feasible(near)
    untrained = CandidateResult("big", True, "over max_params", 6_000, 60_000)
    assert fitness(untrained, config) == fitness(near, config)  # skipped, still infeasible


def test_the_leaderboard_follows_the_objective_and_best_is_feasible():
    results = [_result(95.0, 50_000), _result(93.0, 2_000), _result(80.0, 500)]
    candidates = [Candidate(i, [i], r, False, 0.0) for i, r in enumerate(results)]
    by_accuracy = SearchResult(candidates)
    assert by_accuracy.best.result.params == 50_000
    capped = SearchResult(candidates, objective=Objective(max_params=10_000))
    assert capped.best.result.params == 2_000
    assert capped.leaderboard[-1].result.params == 50_000  # infeasible: last
    assert SearchResult(candidates, objective=Objective(max_params=100)).best is None
    tradeoff = SearchResult(candidates, objective=Objective("tradeoff", params_weight=5.0))
    assert tradeoff.best.result.params == 2_000  # 93 - 5*3.3 beats 95 - 5*4.7


def test_the_pareto_front_keeps_the_networks_no_smaller_one_beats():
    points = [(100, 90.0), (200, 89.0), (300, 95.0), (300, 95.0), (50, 80.0), (400, 95.0)]
    assert pareto_front(points) == [True, False, True, True, True, False]
    results = [_result(acc, size) for size, acc in points[:3]]
    front = SearchResult([Candidate(i, [i], r, False, 0.0) for i, r in enumerate(results)])
    assert [c.result.params for c in front.pareto("params")] == [100, 300]


def test_the_outputs_show_the_front_and_the_objective_that_chose_the_best(tmp_path):
    data = load_dataset("digits", subset=120)
    space = load_space("default")
    evaluator = Evaluator(space, data, TrainSettings(epochs=1, warmup_epochs=0))
    nets = [[0, 8, 8], [1, 5, 8], [2, 6, 8]]
    candidates = [Candidate(i, ids, evaluator.evaluate(ids)[0], False, 0.0)
                  for i, ids in enumerate(nets)]
    objective = Objective("tradeoff", params_weight=3.0, max_flops=10**7)
    result = SearchResult(candidates, objective=objective)
    write_outputs(tmp_path, result, evaluator)
    rows = list(csv.DictReader(open(tmp_path / "leaderboard.csv")))
    assert {"fitness", "feasible", "pareto_params", "pareto_flops"} <= set(rows[0])
    assert [float(r["fitness"]) for r in rows] == pytest.approx(sorted(
        (objective.score(c.result) for c in candidates), reverse=True), abs=1e-4)
    assert sum(int(r["pareto_params"]) for r in rows) == len(result.pareto("params")) >= 1
    best = json.loads((tmp_path / "best_network.json").read_text())
    assert best["chosen_by"]["objective"] == "tradeoff"
    assert "3 x log10(params)" in best["chosen_by"]["description"]
    assert best["params"] == result.best.result.params
    assert (tmp_path / "report.png").stat().st_size > 0
    lines = leaderboard_lines(result)
    assert lines[0].startswith("ranked by valid accuracy (%) - 3 x log10(params)")
    assert any(line.startswith("Pareto front") for line in lines)


def test_unknown_devices_and_cuda_without_a_gpu_are_one_line_errors(monkeypatch):
    with pytest.raises(UserError, match="device must be one of auto, cpu, cuda"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no CUDA GPU") as info:
        resolve_device("cuda")
    assert "\n" not in str(info.value)
    assert resolve_device("auto") == "cpu"


def test_the_evaluator_trains_on_the_device_it_resolves(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    evaluator = Evaluator(load_space("default"), load_dataset("digits", subset=60),
                          TrainSettings(epochs=1), device="auto")
    assert evaluator.device == "cpu" and evaluator.data.x_train.device.type == "cpu"
    assert evaluator.evaluate([0, 8])[0].ok


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_candidates_train_on_the_gpu_with_mixed_precision():
    data = load_dataset("digits", subset=300)
    evaluator = Evaluator(load_space("default"), data, TrainSettings(epochs=2), device="cuda")
    assert evaluator.data.x_train.is_cuda and not evaluator.host_data.x_train.is_cuda
    result, _ = evaluator.evaluate([0, 5, 8])
    assert result.ok and result.best_valid_acc > 30.0
    full = train_candidate([0, 5, 8], evaluator.space, evaluator.data,
                           TrainSettings(epochs=2, mixed_precision=False))
    assert abs(full.best_valid_acc - result.best_valid_acc) < 15.0


@cuda
def test_gpu_workers_move_the_data_themselves():
    evaluator = Evaluator(load_space("default"), load_dataset("digits", subset=200),
                          TrainSettings(epochs=1), workers=2, device="cuda")
    with evaluator:
        results = evaluator.train_batch([[0, 8], [1, 8]])
    assert all(r.ok for r, _ in results)


def _cli(capsys, *args):
    from gymlab.cli import main

    try:
        code = main(["nas", *args])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_cuda_without_a_gpu_and_an_unknown_device_are_one_line_cli_errors(capsys, monkeypatch,
                                                                          tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device, message in (("cuda", "no CUDA GPU"), ("tpu", "expected one of auto, cpu, cuda")):
        code, err = _cli(capsys, "--device", device, "--budget", "1", "--logdir", str(tmp_path))
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert not list(tmp_path.iterdir())  # refused before a run directory


def test_a_capped_tradeoff_search_says_which_objective_chose_its_best(tmp_path):
    from gymlab.nas.search import NASSearch

    with NASSearch(dataset="digits", subset=150, budget=8, epochs=1, objective="tradeoff",
                   params_weight=2.0, max_params=3_000, logdir=str(tmp_path),
                   progress=False) as search:
        search.learn()
    result = search.result
    assert result.best is not None and result.best.result.params <= 3_000
    best = json.loads((search.run.path / "best_network.json").read_text())
    assert best["chosen_by"]["objective"] == "tradeoff"
    assert best["chosen_by"]["max_params"] == 3_000
    assert best["fitness"] == pytest.approx(result.objective.score(result.best.result))
    rows = list(csv.DictReader(open(search.run.path / "leaderboard.csv")))
    assert all(int(r["params"]) <= 3_000 for r in rows)  # capped networks are not trained
