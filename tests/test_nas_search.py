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


# -- shipped tables, searcher designs ---------------------------------------------------------

SHIPPED_TABLES = sorted(p.stem for p in __import__("gymlab.nas.table", fromlist=["SHIPPED"])
                        .SHIPPED.glob("*.npz"))


def test_the_package_ships_tables_of_several_spaces_data_sets_and_trainings():
    from gymlab.nas.table import ArchitectureTable

    metas = [ArchitectureTable(name).meta for name in SHIPPED_TABLES]
    assert len(metas) >= 4
    assert len({m["space_name"] for m in metas}) >= 3
    assert len({m["dataset"] for m in metas}) >= 2
    assert len({m["layers"] for m in metas}) >= 2
    assert len({(m["settings"]["epochs"], m["settings"]["optimizer"]) for m in metas}) >= 3


@pytest.mark.parametrize("name", SHIPPED_TABLES)
def test_each_shipped_table_is_small_records_its_settings_and_searches(name):
    from gymlab.nas.table import SHIPPED, ArchitectureTable

    assert (SHIPPED / f"{name}.npz").stat().st_size <= 1_000_000
    table = ArchitectureTable(name)
    assert table.n_seeds >= 2 and table.meta["seeds"] == table.n_seeds
    settings = table.meta["settings"]
    assert table.curves["valid_acc"].shape == (len(table.space) ** table.layers, table.n_seeds,
                                               settings["epochs"])
    assert {"optimizer", "lr", "batch_size", "seed"} <= set(settings)
    assert table.meta["dataset"] and table.built.any()
    with NASSearch(evaluator="table", table=name, layers=table.layers, budget=8,
                   logdir=None, progress=False) as search:
        search.learn()
    assert search.result.best.result.best_valid_acc > 0


def test_distinct_evolution_proposes_no_network_twice():
    from gymlab.nas.search_space import SPACES
    from gymlab.nas.searchers import RegularizedEvolution

    space = SPACES["default"]

    def proposals(distinct: bool) -> list[tuple[str, ...]]:
        evo = RegularizedEvolution(len(space), 2, seed=0, population_size=4, sample_size=2,
                                   distinct=distinct, key=space.canonical)
        keys = []
        for i in range(30):
            ids = evo.ask()
            keys.append(space.canonical(ids))
            evo.tell(ids, float(i % 7))
        return keys

    assert len(set(proposals(False))) < 30  # mutations of the fittest come back to it
    assert len(set(proposals(True))) == 30


def test_a_repeated_network_gets_the_repeat_reward_in_every_env_sharing_the_memory():
    from gymlab.nas.env import NASEnv

    a = NASEnv(evaluator="table", layers=3, reward="accuracy", repeat_reward=-0.5)
    b = NASEnv(evaluator=a.evaluator, layers=3, reward="accuracy", repeat_reward=-0.5)
    seen: set = set()
    a.share(a.evaluator, seen)
    b.share(a.evaluator, seen)
    a.reset(seed=0)
    b.reset(seed=0)
    first = a.step([0, 6, 8])[1]
    assert 0 < first <= 1
    assert b.step([0, 8, 6])[1] == -0.5  # the same network (its `none` elsewhere)
    assert b.step([0, 8, 7])[1] > 0  # a new one
    a.reset(seed=0)  # a seeded reset forgets what was seen
    assert a.step([0, 6, 8])[1] == first
    plain = NASEnv(evaluator=a.evaluator, layers=3, reward="accuracy")
    plain.reset(seed=0)
    assert plain.step([0, 6, 8])[1] == plain.step([0, 6, 8])[1] == first


def test_the_accuracy_reward_follows_the_searchs_objective():
    import math

    from gymlab.nas.env import NASEnv

    plain = NASEnv(evaluator="table", layers=3, reward="accuracy")
    plain.reset(seed=0)
    accuracy = plain.step([0, 6, 8])[1]
    result = plain.last
    tradeoff = NASEnv(evaluator=plain.evaluator, layers=3, reward="accuracy",
                      objective={"objective": "tradeoff", "params_weight": 2.0})
    tradeoff.reset(seed=0)
    assert tradeoff.step([0, 6, 8])[1] == pytest.approx(
        accuracy - 2.0 * math.log10(result.params) / 100)
    capped = NASEnv(evaluator=plain.evaluator, layers=3, reward="accuracy",
                    failure_penalty=-0.7, objective={"max_params": result.params - 1})
    capped.reset(seed=0)
    assert capped.step([0, 6, 8])[1] == -0.7
    with pytest.raises(UserError, match="unknown setting"):
        NASEnv(evaluator=plain.evaluator, layers=3, objective={"max_parms": 3})


@pytest.mark.parametrize("searcher", ["evolution", "ppo"])
def test_the_searcher_is_told_the_objectives_fitness(monkeypatch, searcher):
    from gymlab.nas import searchers

    told = []
    monkeypatch.setattr(searchers.RegularizedEvolution, "tell",
                        lambda self, ids, fitness: told.append(fitness))
    with NASSearch(**TABLE, searcher=searcher, budget=8, population=3, sample_size=2,
                   objective="tradeoff", params_weight=3.0, logdir=None) as search:
        search.learn()
    fitness = [search.fitness(c.result) for c in search.result.candidates]
    assert min(fitness) < max(fitness) < 100 - 3.0 * 2  # size costs: below plain accuracy
    if searcher == "evolution":
        assert told == fitness
    else:
        assert [c.reward for c in search.result.candidates] == pytest.approx(
            [f / 100 for f in fitness])
    assert search.result.best.result is max(search.result.candidates,
                                            key=lambda c: search.fitness(c.result)).result


def test_mutate_repeats_scores_an_unseen_neighbour_instead_of_a_repeat():
    from gymlab.nas.env import NASEnv

    env = NASEnv(evaluator="table", layers=3, reward="accuracy", mutate_repeats=True)
    env.reset(seed=0)
    first = env.step([0, 6, 8])[4]
    assert first["layer_ids"] == [0, 6, 8]
    scored = [env.step([0, 6, 8])[4]["layer_ids"] for _ in range(5)]  # the same proposal
    keys = {env.space.canonical(ids) for ids in [[0, 6, 8], *scored]}
    assert len(keys) == 6  # each one new
    assert all(sum(a != b for a, b in zip(ids, [0, 6, 8])) == 1 for ids in scored)
    env.reset(seed=0)
    assert env.step([0, 6, 8])[4]["layer_ids"] == [0, 6, 8]  # a seeded reset forgets


@pytest.mark.parametrize("searcher", ["evolution", "dqn", "ppo"])
def test_the_default_searchers_spend_no_budget_on_repeats(searcher):
    def hits(**options):
        with NASSearch(**TABLE, searcher=searcher, budget=60, logdir=None, **options) as run:
            run.learn()
        return sum(c.cache_hit for c in run.result.candidates)

    assert hits() == 0
    if searcher != "evolution":  # its greedy network (ppo: an elite left as it is) comes
        assert hits(env_kwargs={"mutate_repeats": False}) > 0  # back without mutate_repeats


def test_an_rl_search_records_its_env_settings_and_resumes_with_them(tmp_path, monkeypatch):
    from gymlab.nas import search as nas_search

    with NASSearch(**TABLE, searcher="ppo", budget=8, logdir=str(tmp_path)) as search:
        search.learn()
    config = json.loads((search.run.path / "config.json").read_text())
    assert config["run"]["env_kwargs"] == nas_search.RL_ENV_DEFAULTS["ppo"]
    monkeypatch.setitem(nas_search.RL_ENV_DEFAULTS, "ppo", {"mutate_repeats": False})
    with NASSearch.resume(search.run.path, budget=12) as resumed:
        resumed.learn()
        # the design the search started with, not the changed defaults
        assert resumed.env_kwargs()["edit_elites"] == 5
        assert resumed.env_kwargs()["mutate_repeats"] is True
    assert resumed.step == 12
