"""The network-design environment's pieces: search spaces, builder, datasets, training, env."""

import json
import os
import pickle
import signal

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gymlab.core.errors import UserError
from gymlab.nas.builder import build_network
from gymlab.nas.datasets import load_dataset
from gymlab.nas.search_space import SPACES, load_space
from gymlab.nas.trainer import TrainSettings, train_candidate

DEFAULT, TUTORIAL = SPACES["default"], SPACES["tutorial"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@settings(max_examples=60, deadline=None)
@given(space=st.sampled_from([DEFAULT, TUTORIAL]),
       ids=st.lists(st.integers(0, 8), min_size=1, max_size=6),
       shape=st.sampled_from([(1, 8, 8), (3, 32, 32), (1, 5, 7)]))
def test_every_list_builds_a_working_network_or_says_why(space, ids, shape):
    result = build_network(ids, space, shape, num_classes=10)
    if result.built:
        with torch.no_grad():
            out = result.model.eval()(torch.zeros(4, *shape))
        assert out.shape == (4, 10)
        assert result.params == sum(p.numel() for p in result.model.parameters())
        assert result.flops > 0
    else:
        assert result.reason


def test_padding_keeps_most_lists_buildable_on_digits():
    rng = np.random.default_rng(0)
    lists = rng.integers(0, 9, size=(300, 5))
    built = {name: np.mean([build_network(ids, space, (1, 8, 8), 10).built for ids in lists])
             for name, space in SPACES.items()}
    assert built["default"] > 0.9 and built["tutorial"] < 0.6, built


def test_not_built_reason_names_the_layer():
    result = build_network([3, 3], TUTORIAL, (1, 8, 8), 10)
    assert not result.built and "layer 1" in result.reason and "smaller than" in result.reason
    assert "outside" in build_network([42], DEFAULT, (1, 8, 8), 10).reason


def test_user_defined_spaces(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps([{"kind": "conv", "kernel": 3, "channels": 4, "padding": 1},
                                {"kind": "maxpool", "kernel": 2}, {"kind": "none"}]))
    space = load_space(str(path))
    assert [c.name for c in space.choices] == ["conv3x3-4", "maxpool2", "none"]
    assert space.describe([0, 2, 1]) == "conv3x3-4 > maxpool2"
    assert space.canonical([2, 0, 1]) == space.canonical([0, 1, 2])
    for bad, message in [([{"kind": "attention"}], "unknown layer type"),
                         ([{"kind": "conv", "kernel": 3}], "channels >= 1"),
                         ([{"kind": "conv", "kernel": 3, "channels": 2, "stride": 2}],
                          "unknown argument"),
                         ([], "non-empty list"), ([{"kernel": 3}], "needs a 'kind'")]:
        with pytest.raises(UserError, match=message):
            load_space(bad)
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(UserError, match="cannot read search space"):
        load_space(str(tmp_path / "broken.json"))
    with pytest.raises(UserError, match="unknown search space"):
        load_space("fancy")


def test_digits_split_and_normalisation(digits):
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert len(digits.x_train) + len(digits.x_valid) + len(digits.x_test) == 1797
    assert abs(float(digits.x_train.mean())) < 1e-4
    again = load_dataset("digits")
    assert torch.equal(digits.x_valid, again.x_valid)  # the split is seeded


def fake_cifar(root, n=20, broken=None):
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        if name == broken:
            (folder / name).write_bytes(b"not a pickle")
            continue
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return folder


def test_cifar10_standard_archive(tmp_path):
    fake_cifar(tmp_path)
    data = load_dataset("cifar10", str(tmp_path), subset=100, split=(0.8, 0.2, 0.0))
    assert data.input_shape == (3, 32, 32)
    assert len(data.x_train) == 80 and len(data.x_valid) == 20 and len(data.x_test) == 0


@pytest.mark.parametrize("broken, message", [("data_batch_3", "is not a CIFAR-10 batch")])
def test_cifar10_errors(tmp_path, broken, message):
    fake_cifar(tmp_path, broken=broken)
    with pytest.raises(UserError, match=message):
        load_dataset("cifar10", str(tmp_path))
    with pytest.raises(UserError, match="missing data_batch_1"):
        load_dataset("cifar10", str(tmp_path / "elsewhere"))


def test_npz_and_label_errors(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "ok.npz", x=x, y=np.arange(40) % 4)
    data = load_dataset("npz", str(tmp_path / "ok.npz"))
    assert data.input_shape == (1, 6, 6) and data.num_classes == 4
    np.savez(tmp_path / "neg.npz", x=x, y=np.arange(40) % 4 - 1)
    with pytest.raises(UserError, match="labels must lie in"):
        load_dataset("npz", str(tmp_path / "neg.npz"))
    np.savez(tmp_path / "nolabels.npz", x=x)
    with pytest.raises(UserError, match="needs arrays 'x' and 'y'"):
        load_dataset("npz", str(tmp_path / "nolabels.npz"))
    with pytest.raises(UserError, match="unknown dataset"):
        load_dataset("imagenet")


def test_training_is_deterministic_and_learns(digits):
    ids = [0, 6, 1, 6, 8]
    a = train_candidate(ids, DEFAULT, digits, TrainSettings(epochs=3, optimizer="adam"))
    b = train_candidate(ids, DEFAULT, digits, TrainSettings(epochs=3, optimizer="adam"))
    assert a.ok and a.valid_loss == b.valid_loss and len(a.valid_acc) == 3
    assert a.best_valid_acc > 80.0  # chance is 10%
    capped = train_candidate(ids, DEFAULT, digits, TrainSettings(max_params=100))
    assert not capped.ok and "max_params" in capped.reason


def test_env_spaces_memory_and_checkers(digits):
    from gymnasium.utils.env_checker import check_env

    env = gym.make("gymlab/NAS-v0", dataset=digits, epochs=2, layers=3, memory=4)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["metrics"].shape == (4, 2, 2) and obs["architectures"].shape == (4, 3)
    obs, reward, _, _, info = env.step(np.array([0, 6, 8]))
    assert info["built"] and reward == 1.0  # no previous network: just the build bonus
    assert obs["architectures"][-1].tolist() == [0, 6, 8]
    obs, _, _, _, _ = env.step(np.array([8, 6, 0]))  # a different net
    assert env.unwrapped.last_cache_hit is False
    env.step(np.array([0, 8, 6]))  # same layers as the first, other order of `none`
    assert env.unwrapped.last_cache_hit is True


def test_env_not_built_keeps_memory():
    env = gym.make("gymlab/NAS-v0", space="tutorial", epochs=1, layers=3)
    obs, _ = env.reset(seed=0)
    obs2, reward, _, _, info = env.step(np.array([3, 3, 3]))
    assert not info["built"] and reward == -1.0
    assert np.array_equal(obs["architectures"], obs2["architectures"])


def test_env_bad_arguments():
    for kwargs, message in [({"layers": 0}, "layers must be positive"),
                            ({"reward": "speed"}, "reward must be one of"),
                            ({"metrics": ["f1"]}, "metrics must be some of")]:
        with pytest.raises(UserError, match=message):
            gym.make("gymlab/NAS-v0", **kwargs)


def search(on_eval=None, **options):
    """The result of a NASSearch with `options` (NASConfig and RunConfig fields)."""
    from gymlab.nas import NASSearch

    with NASSearch(**{"progress": False, **options}) as algo:
        algo.learn(on_eval=on_eval)
    return algo.result


@pytest.mark.parametrize("searcher", ["evolution", "random", "ppo", "dqn"])
def test_search_writes_leaderboard_report_and_best_network(tmp_path, searcher):
    import csv

    config = {"searcher": searcher, "budget": 6, "epochs": 1, "layers": 3, "subset": 300,
              "population": 3, "sample_size": 2, "logdir": str(tmp_path)}
    result = search(**config)
    assert len(result.candidates) == 6
    run = result.run_dir
    rows = list(csv.DictReader(open(run / "leaderboard.csv")))
    assert rows and float(rows[0]["valid_acc"]) == pytest.approx(
        result.best.result.best_valid_acc, abs=0.01)
    spec = json.loads((run / "best_network.json").read_text())
    assert spec["layer_ids"] == result.best.ids
    state = torch.load(run / "best_network.pt", weights_only=True)
    rebuilt = build_network(spec["layer_ids"], load_space(spec["space"]),
                            tuple(spec["input_shape"]), spec["num_classes"]).model
    rebuilt.load_state_dict(state)
    assert (run / "report.png").read_bytes()[:4] == b"\x89PNG"
    again = search(**config)  # same seed, same candidates and numbers
    assert [c.ids for c in again.candidates] == [c.ids for c in result.candidates]
    assert [c.result.valid_loss for c in again.candidates] == [
        c.result.valid_loss for c in result.candidates]


def test_regularized_evolution_mutates_one_layer_of_a_tournament_winner():
    from gymlab.nas.searchers import RegularizedEvolution

    evo = RegularizedEvolution(n_choices=4, layers=3, seed=0, population_size=3, sample_size=3)
    for fitness in (1.0, 5.0, 2.0):
        evo.tell(evo.ask(), fitness)
    best = max(evo.population, key=lambda m: m[1])[0]
    child = evo.ask()
    assert sum(a != b for a, b in zip(child, best)) == 1
    evo.tell(child, 0.0)
    assert len(evo.population) == 3  # the oldest died


def test_the_tutorials_sb3_pipeline_runs():
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    small = load_dataset("digits", subset=200)
    env = gym.make("gymlab/NAS-v0", dataset=small, epochs=1, layers=3, memory=4)
    sb3_check_env(env.unwrapped, warn=False)
    model = sb3.PPO("MultiInputPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0,
                    device="cpu")
    model.learn(total_timesteps=16)
    assert env.unwrapped.stats["candidates"] >= 16


def _signal_at(candidate: int, signum: int):
    """An on_eval callback that sends `signum` to this process when `candidate` is scored."""
    def on_eval(step, result):
        if step == candidate:
            os.kill(os.getpid(), signum)
    return on_eval


def test_interrupted_search_resumes_without_retraining(tmp_path):
    from gymlab.nas import NASSearch

    config = {"searcher": "evolution", "budget": 8, "epochs": 1, "layers": 3, "subset": 300,
              "population": 3, "sample_size": 2}
    straight = search(**config, logdir=str(tmp_path / "a"))
    # Ctrl-C during the first round of 4: the round is finished, then the search stops
    cut = search(**config, logdir=str(tmp_path / "b"), on_eval=_signal_at(2, signal.SIGINT))
    assert cut.outcome == "interrupted" and cut.exit_code == 130 and len(cut.candidates) == 4
    trained = len((cut.run_dir / "cache.jsonl").read_text().splitlines())
    with NASSearch.resume(cut.run_dir, progress=False) as resumed:
        resumed.learn()
    assert resumed.outcome == "completed" and resumed.exit_code == 0
    assert [c.ids for c in resumed.result.candidates] == [c.ids for c in straight.candidates]
    assert [c.cache_hit for c in resumed.result.candidates[:4]] == [True] * 4  # none retrained
    assert len((cut.run_dir / "cache.jsonl").read_text().splitlines()) > trained


def _same_search(one, two) -> None:
    assert [c.ids for c in one.candidates] == [c.ids for c in two.candidates]
    assert [c.result.valid_loss for c in one.candidates] == [
        c.result.valid_loss for c in two.candidates]
    assert [c.cache_hit for c in one.candidates] == [c.cache_hit for c in two.candidates]
    assert [c.reward for c in one.candidates] == [c.reward for c in two.candidates]


@pytest.mark.parametrize("searcher", ["evolution", "ppo"])
def test_two_workers_give_the_sequential_results(searcher):
    # ppo: two envs, so each vector step trains two candidates at once; the candidates'
    # seeded training must not disturb the agent's own sampling either
    config = {"searcher": searcher, "budget": 8, "epochs": 1, "layers": 3, "subset": 300,
              "population": 3, "sample_size": 2,
              "round_size": 3 if searcher == "evolution" else 2, "logdir": None}
    _same_search(search(**config), search(**config, workers=2))


def test_ray_actors_give_the_sequential_results():
    pytest.importorskip("ray")
    config = {"budget": 4, "epochs": 1, "layers": 3, "subset": 300, "round_size": 2,
              "logdir": None}
    _same_search(search(**config), search(**config, workers=2, ray_address="local"))


def test_successive_halving_trains_only_the_best_fully(tmp_path):
    from gymlab.nas import NASSearch
    from gymlab.nas.halving import rungs

    assert rungs(2, 3, 6) == [2, 6] and rungs(1, 2, 6) == [1, 2, 4, 6] and rungs(2, 3, 2) == [2]
    result = search(budget=12, epochs=3, layers=3, subset=300, round_size=6, halving_epochs=1,
                    halving_eta=3, logdir=str(tmp_path))
    full = [c for c in result.candidates if c.result.ok and not c.screened]
    screened = [c for c in result.candidates if c.screened]
    assert len(full) == 4 and len(screened) >= 6  # 2 of each round of 6; failures not built
    assert all(len(c.result.valid_acc) == 1 for c in screened)
    assert all(len(c.result.valid_acc) == 3 for c in full)
    assert result.best in full and all(c in full for c in result.leaderboard)
    # the kept ones were the best of their round after one epoch
    for start in (0, 6):
        round_ = result.candidates[start:start + 6]
        one_epoch = {c.index: c.result.valid_acc[0] if c.result.ok else -1 for c in round_}
        kept = [c.index for c in round_ if not c.screened and c.result.ok]
        assert min(one_epoch[i] for i in kept) >= max(
            one_epoch[c.index] for c in round_ if c.screened)
    # a resumed halving search replays from the cache: nothing is trained again
    with NASSearch.resume(result.run_dir, progress=False) as again:
        again.learn()
    assert all(c.cache_hit for c in again.result.candidates)
    assert [c.result.valid_loss for c in again.result.candidates] == [
        c.result.valid_loss for c in result.candidates]


def test_halving_on_the_table_uses_the_first_epochs_of_its_curves():
    result = search(evaluator="table", layers=3, budget=16, round_size=8, halving_epochs=2,
                    logdir=None)
    screened = [c for c in result.candidates if c.screened]
    assert screened and all(len(c.result.valid_acc) == 2 for c in screened)


def test_layerwise_env_builds_one_layer_per_step():
    from gymnasium.utils.env_checker import check_env

    env = gym.make("gymlab/NASLayerwise-v0", epochs=1, layers=3, subset=300)
    check_env(env.unwrapped, skip_render_check=True)
    stop = env.action_space.n - 1
    env.reset(seed=0)
    assert env.step(0)[1:3] == (0.0, False)  # conv3x3-16, not trained yet
    obs, reward, terminated, _, info = env.step(stop)
    assert terminated and info["architecture"] == "conv3x3-16" and reward == 1.0
    env.reset()
    obs, *_ = env.step(6)
    assert obs["architectures"][-1][0] == 0  # the memory of networks outlives the episode
    env.step(6)
    obs, _, terminated, _, info = env.step(6)  # at `layers` ids the network is trained
    assert terminated and info["architecture"] == "maxpool2 > maxpool2 > maxpool2"


def test_architecture_table_replaces_training(tmp_path):
    from gymlab.nas.table import ArchitectureTable, build_table

    space = load_space([{"kind": "conv", "kernel": 3, "channels": 4, "padding": 1},
                        {"kind": "maxpool", "kernel": 2}, {"kind": "none"}])
    data = load_dataset("digits", subset=200)
    settings = TrainSettings(epochs=2, optimizer="adam")
    path = build_table(tmp_path / "t.npz", space, data, layers=2, settings=settings, seeds=2)
    table = ArchitectureTable(path)
    live = train_candidate([0, 1], space, data, settings)
    looked_up = table.lookup([0, 1], seed=0)
    assert looked_up.valid_loss == pytest.approx(live.valid_loss, rel=1e-6)
    assert table.lookup([0, 1], seed=1).valid_loss != looked_up.valid_loss  # second seed
    best_acc, best_ids = table.best()
    assert len(best_ids) == 2 and 0 < best_acc <= 100

    result = search(evaluator="table", table=str(path), layers=2, budget=5, population=3,
                    sample_size=2, logdir=None)
    assert len(result.candidates) == 5
    assert all(c.result.seconds == pytest.approx(float(table.seconds[table.index(c.ids), 0]))
               for c in result.candidates)
    with pytest.raises(UserError, match="use layers=2"):
        gym.make("gymlab/NAS-v0", evaluator="table", table=str(path), layers=3)
    with pytest.raises(UserError, match="no architecture table"):
        gym.make("gymlab/NAS-v0", evaluator="table", table=str(tmp_path / "none.npz"))


def test_cli_nas_search_resume_eval_and_plot(tmp_path, capsys):
    from tests.test_cli import run_main

    code, out, err = run_main(capsys, "train", "nas", "--budget", "4", "--epochs", "1",
                              "--layers", "2", "--subset", "200", "--logdir", str(tmp_path),
                              "--progress", "false")
    assert code == 0 and "4 candidates" in err, err
    (run,) = tmp_path.iterdir()
    assert run.name.startswith("nas-evolution-digits-")
    code, out, err = run_main(capsys, "train", "--resume", str(run))
    assert code == 0 and "4 cache hits" in err  # nothing retrained
    code, out, err = run_main(capsys, "train", "--resume", str(run), "--budget", "6")
    assert code == 0 and "6 candidates" in err and "4 cache hits" in err, err
    code, _, err = run_main(capsys, "train", "--resume", str(run), "--searcher", "random")
    assert code == 2 and "cannot change searcher" in err
    code, out, err = run_main(capsys, "eval", str(run))
    assert code == 0 and "candidates):" in out and "  1. " in out, err
    code, out, err = run_main(capsys, "plot", str(run), "--out", str(tmp_path / "curve.png"))
    assert code == 0 and (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG", err


def test_cli_nas_build_table(tmp_path, capsys):
    from tests.test_cli import run_main

    space = tmp_path / "space.json"
    space.write_text('[{"kind": "maxpool", "kernel": 2}, {"kind": "none"}]')
    code, out, err = run_main(capsys, "nas", "--space", str(space), "--layers", "2", "--epochs",
                              "1", "--subset", "100", "build-table", "--out",
                              str(tmp_path / "t.npz"), "--seeds", "1")
    assert code == 0 and (tmp_path / "t.npz").exists(), err
    if not torch.cuda.is_available():  # build-table trains on --device like a search
        from tests.test_cli import assert_one_line_error

        code, _, err = run_main(capsys, "nas", "--device", "cuda", "build-table", "--out",
                                str(tmp_path / "u.npz"))
        assert code == 2 and "device cuda" in err and not (tmp_path / "u.npz").exists()
        assert_one_line_error(err)


def test_cli_nas_bad_input(tmp_path, capsys):
    from tests.test_cli import assert_one_line_error, run_main

    (tmp_path / "bad.json").write_text('[{"kind": "attention"}]')
    (tmp_path / "empty.json").write_text("[]")
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    np.savez(tmp_path / "labels.npz", x=np.zeros((20, 4, 4), np.float32), y=np.arange(20) - 1)
    cases = [
        (["--dataset", "cifar10", "--data-dir", str(tmp_path)], "missing data_batch_1"),
        (["--dataset", "npz", "--data-dir", str(tmp_path / "labels.npz")], "labels must lie"),
        (["--layers", "0"], "layers must be positive"),
        (["--space", str(tmp_path / "empty.json")], "non-empty list"),
        (["--space", str(tmp_path / "bad.json")], "unknown layer type"),
        (["--budget", "0"], "budget must be positive"),
        (["--searcher", "bayes"], "expected one of"),
        (["--searcher", "ppo", "--halving-epochs", "2"], "use it with the evolution"),
        (["--halving-epochs", "6"], "must be below epochs"),
        (["--halving-epochs", "2", "--halving-eta", "1"], "halving_eta must be > 1"),
        (["--ray-address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
        (["--env", "CartPole-v1"], "nas searches gymlab/NAS-v0"),
        (["--env-kwargs", '{"dataset": "cifar10"}'], "set them as nas options"),
        (["--evaluator", "table", "--layers", "3", "--space", "tutorial"], "built on the space"),
        (["--space", str(tmp_path / "binary.json")], "not a UTF-8 text file"),
    ]
    for args, message in cases:
        logdir = tmp_path / "runs"
        code, _, err = run_main(capsys, "train", "nas", *args, "--logdir", str(logdir))
        assert code == 2 and message in err, (args, err)
        assert_one_line_error(err)
        assert not logdir.exists()


def test_workers_beyond_the_machine_are_clamped(capsys):
    from gymlab.nas.workers import usable_workers

    assert usable_workers(10_000) < 10_000
    assert "warning" in capsys.readouterr().err
