"""PPO's searcher design: edit actions on the best networks so far (gymlab.nas.elites)."""

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gymlab.core.errors import UserError
from gymlab.nas import NASSearch
from gymlab.nas.elites import Elites
from gymlab.nas.env import NASEnv


def test_elites_keep_the_best_distinct_networks_best_first():
    elites = Elites(3, layers=2, n_choices=4)
    for ids, score in (([0, 1], 0.5), ([1, 1], 0.9), ([0, 1], 0.99), ([2, 2], 0.5),
                       ([3, 3], 0.1), ([1, 2], 0.7)):
        elites.add(ids, score)
    # [0, 1] again is ignored; [2, 2] ties [0, 1] and stays behind it; [3, 3] never enters
    assert elites.members == [(0.9, [1, 1]), (0.7, [1, 2]), (0.5, [0, 1])]
    elites.add([3, 0], 0.8)  # pushes [0, 1] out, which may then come back
    assert [ids for _, ids in elites.members] == [[1, 1], [3, 0], [1, 2]]
    elites.add([0, 1], 0.95)
    assert elites.members[0] == (0.95, [0, 1])
    ids, scores = elites.observation(empty=4.0)
    assert ids.tolist() == [[0, 1], [1, 1], [3, 0]] and scores.tolist() == pytest.approx(
        [0.95, 0.9, 0.8])


def test_an_edit_sets_one_id_of_the_chosen_elite_or_draws_a_random_network():
    elites = Elites(2, layers=3, n_choices=5)
    rng = np.random.default_rng(0)
    assert elites.nvec() == [3, 3, 5] and elites.random_action == 2
    empty = elites.decode([0, 1, 4], rng)  # no elite yet: a random network
    assert len(empty) == 3 and all(0 <= i < 5 for i in empty)
    elites.add([1, 2, 3], 0.5)
    assert elites.decode([0, 1, 4], rng) == [1, 4, 3]
    assert len(elites.decode([1, 0, 0], rng)) == 3  # rank 1 is still empty
    draws = {tuple(elites.decode([2, 0, 0], rng)) for _ in range(20)}
    assert len(draws) > 10  # the random action
    assert elites.observation(empty=5.0)[0][1].tolist() == [5.0, 5.0, 5.0]
    with pytest.raises(ValueError, match="positive"):
        Elites(0, 3, 5)


def test_the_edit_env_edits_the_best_network_so_far_and_passes_the_checkers():
    from gymnasium.utils.env_checker import check_env

    env = NASEnv(evaluator="table", layers=3, reward="accuracy", edit_elites=2)
    assert env.action_space.nvec.tolist() == [3, 3, 9]
    obs, _ = env.reset(seed=0)
    assert obs["elites"].tolist() == [[9, 9, 9]] * 2 and obs["elite_scores"].tolist() == [0, 0]
    first = env.step([2, 0, 0])[4]["layer_ids"]  # a random network
    obs, reward, *_, info = env.step([0, 1, 4])
    assert info["layer_ids"] == [first[0], 4, first[2]] or info["layer_ids"] == first
    assert obs["elite_scores"].max() == pytest.approx(
        max(reward, env.evaluator.evaluate(first)[0].best_valid_acc / 100))
    assert obs["elites"][0].tolist() in (first, info["layer_ids"])
    check_env(NASEnv(evaluator="table", layers=3, reward="accuracy", edit_elites=2),
              skip_render_check=True)
    with pytest.raises(UserError, match="edit_elites"):
        NASEnv(evaluator="table", layers=3, edit_elites=-1)
    from gymlab.nas.layerwise import NASLayerwiseEnv

    with pytest.raises(UserError, match="edit_elites"):
        NASLayerwiseEnv(evaluator="table", layers=3, edit_elites=2)


def test_envs_sharing_elites_edit_each_others_best_and_propose_what_they_step():
    a = NASEnv(evaluator="table", layers=3, reward="accuracy", edit_elites=3,
               mutate_repeats=True)
    b = NASEnv(evaluator=a.evaluator, layers=3, reward="accuracy", edit_elites=3,
               mutate_repeats=True)
    seen: set = set()
    a.share(a.evaluator, seen, a.elites)
    b.share(a.evaluator, seen, a.elites)
    a.reset(seed=0)
    b.reset(seed=1)
    scored = a.step([3, 0, 0])[4]["layer_ids"]  # a random network, [7, 5, 4] for seed 0
    new_id = (scored[2] + 1) % 9
    proposal = b.propose([0, 2, new_id])  # b edits a's network
    assert proposal == [*scored[:2], new_id]
    assert b.propose([0, 2, new_id]) == proposal  # asked again: the same ids
    assert b.step([0, 2, new_id])[4]["layer_ids"] == proposal
    assert len(a.elites.members) == len(b.elites.members) == 2
    best = a.elites.members[0][1]
    assert b.propose([0, 0, best[0]]) == best  # the best network itself: a repeat ...
    neighbour = b.step([0, 0, best[0]])[4]["layer_ids"]
    assert sum(x != y for x, y in zip(neighbour, best)) == 1  # ... scored as a neighbour
    with pytest.raises(ValueError, match="edit_elites"):
        NASEnv(evaluator=a.evaluator, layers=3, edit_elites=2).share(a.evaluator, None,
                                                                     a.elites)


def _regret_at(searcher: str, table: str, seeds: range, **env_kwargs) -> np.ndarray:
    """Mean regret (points below the table optimum) after 25, 50 and 100 candidates."""
    from gymlab.nas.table import ArchitectureTable

    t = ArchitectureTable(table)
    best = np.where(t.built, t.curves["valid_acc"].max(axis=2), 0.0).max(axis=0)
    regrets = []
    for seed in seeds:
        with NASSearch(evaluator="table", table=table, layers=t.layers, budget=100,
                       searcher=searcher, reward="accuracy", seed=seed, logdir=None,
                       progress=False, env_kwargs=env_kwargs) as run:
            run.learn()
        so_far = np.maximum.accumulate([c.result.best_valid_acc for c in run.result.candidates])
        regrets.append(best[seed % t.n_seeds] - so_far[[24, 49, 99]])
    return np.mean(regrets, axis=0)


def test_ppo_editing_elites_finds_good_networks_sooner_than_random_and_layer_ids():
    # seeds 0-9 are tuning seeds of benchmarks/nas_tables.py (figures: ppo 2.26 / 0.60 /
    # 0.09, random 2.39 / 2.00 / 0.96, ppo proposing layer ids 3.22 / 1.10 / 0.21)
    seeds = range(10)
    ppo = _regret_at("ppo", "shifted-small-4", seeds)
    chance = _regret_at("random", "shifted-small-4", seeds)
    ids = _regret_at("ppo", "shifted-small-4", seeds, edit_elites=0)
    assert ppo[1] < 0.5 * chance[1] and ppo[2] < 0.5 * chance[2]
    assert ppo[1] < 0.75 * ids[1] and ppo[2] < ids[2]
    assert ppo[2] < 0.3


def test_the_benchmarks_settings_reach_each_rl_searchers_env_and_are_restored():
    import gymlab.nas.search as nas_search

    path = Path(__file__).parents[1] / "benchmarks" / "nas_tables.py"
    spec = importlib.util.spec_from_file_location("nas_tables", path)
    nas_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nas_tables)
    before = copy.deepcopy((nas_search.RL_ENV_DEFAULTS, nas_search.RL_SEARCHER_DEFAULTS))
    setting = {"gamma": 0.0, "mutate_repeats": True, "edit_elites": 3, "learning_rate": 0.1}
    with nas_tables.searcher_settings("ppo", setting) as options:
        assert options == {"searcher": "ppo", "reward": "accuracy"}
        assert nas_search.RL_ENV_DEFAULTS["ppo"] == {"mutate_repeats": True, "edit_elites": 3}
        assert nas_search.RL_ENV_DEFAULTS["dqn"] == before[0]["dqn"]
        assert nas_search.RL_SEARCHER_DEFAULTS["ppo"]["learning_rate"] == 0.1
    with nas_tables.searcher_settings("ppo-improvement", {"gamma": 0.0}):
        assert nas_search.RL_ENV_DEFAULTS["ppo"] == {}  # a setting names every env option
    assert (nas_search.RL_ENV_DEFAULTS, nas_search.RL_SEARCHER_DEFAULTS) == before
    assert any("edit_elites" in g for g in nas_tables.GRIDS["ppo"])
    assert any("edit_elites" not in g for g in nas_tables.GRIDS["ppo"])
