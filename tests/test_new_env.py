"""`gymlab new-env`: the generated package checks, installs, tests itself and trains."""

import importlib.util
import os
import subprocess
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from gymlab import PPO
from gymlab.scaffold import ACTIONS, OBSERVATIONS, new_env
from tests.test_cli import assert_one_line_error, gymlab, run_main

TINY_PPO = {"num_envs": 2, "num_steps": 64, "num_minibatches": 2, "update_epochs": 1,
            "total_steps": 256, "eval_every": 0, "logdir": None, "progress": False}


@pytest.mark.parametrize("obs", list(OBSERVATIONS))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_space_combination_passes_the_checker_and_runs_ppo(tmp_path, monkeypatch, obs,
                                                                 action):
    name = f"gymlab_newenv_{obs}_{action}"
    new_env(name, ["Reach", "GridWorld"], tmp_path, obs=obs, action=action)
    monkeypatch.syspath_prepend(str(tmp_path / name / "src"))
    # PPO names the id only: gymlab imports the package from the id's namespace
    agent = PPO(f"{name}/GridWorld-v0", seed=0, **TINY_PPO)
    agent.learn()
    assert agent.outcome == "completed"
    env = gym.make(f"{name}/GridWorld-v0")
    assert type(env.observation_space).__name__.lower() == obs
    assert type(env.action_space).__name__.lower() == action
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning from gymnasium's checker
        check_env(env.unwrapped)
    frame = gym.make(f"{name}/GridWorld-v0", render_mode="rgb_array")
    frame.reset(seed=0)
    assert frame.render().shape == (7 * 32, 7 * 32, 3)  # the second stage's grid is 7x7


def can_build_offline() -> bool:
    """pip --no-build-isolation builds with this venv's setuptools: 64+ for the package's
    pyproject.toml, and before 70.1 setuptools also needs the wheel package."""
    try:
        setuptools = tuple(int(part) for part in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return setuptools >= (70, 1) or (setuptools >= (64, 0)
                                     and importlib.util.find_spec("wheel") is not None)


@pytest.mark.smoke
def test_generate_install_test_and_train(tmp_path):
    result = gymlab("new-env", "toyenvs", "--dir", str(tmp_path), "--obs", "dict",
                    "--action", "multidiscrete", "--stage", "Reach", "--stage", "GridWorld")
    assert result.returncode == 0, result.stderr
    assert "toyenvs/Reach-v0, toyenvs/GridWorld-v0" in result.stdout
    package = tmp_path / "toyenvs"
    assert {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()} == {
        "pyproject.toml", "README.md", "tests/test_env.py", "src/toyenvs/__init__.py",
        "src/toyenvs/reach.py", "src/toyenvs/grid_world.py"}

    env = dict(os.environ)
    if can_build_offline():
        # a real build of the package, into a folder rather than into the test's venv;
        # offline: no index, no dependencies, the venv's setuptools
        site = tmp_path / "site"
        build = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
             "--no-build-isolation", "--target", str(site), str(package)],
            capture_output=True, text=True, timeout=240)
        assert build.returncode == 0, build.stderr
        assert (site / "toyenvs" / "grid_world.py").exists()
        env["PYTHONPATH"] = str(site)
    else:  # e.g. a Python 3.12+ venv, which has no setuptools: use the source
        env["PYTHONPATH"] = str(package / "src")

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "toyenvs"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=240)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "8 passed" in tests.stdout

    train = gymlab("train", "ppo", "--env", "toyenvs/GridWorld-v0", "--total-steps", "2000",
                   "--logdir", str(tmp_path / "runs"), "--progress", "false", env=env)
    assert train.returncode == 0, train.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("ppo-toyenvs_GridWorld-v0-")
    assert (run / "checkpoints" / "last.pt").exists()
    assert '"env": "toyenvs/GridWorld-v0"' in (run / "config.json").read_text()


@pytest.mark.parametrize("args, message", [
    (["my-envs"], "not a valid Python package name (ASCII letters, digits and _, not "
     "starting with a digit); did you mean 'my_envs'?"),
    (["2d"], "did you mean 'env_2d'?"),
    (["class"], "'class' is a Python keyword, not a usable package name; did you mean "
     "'class_env'?"),
    (["json"], "'json' is the name of a standard-library module; did you mean 'json_env'?"),
    (["gymnasium"], "a module named 'gymnasium' is already importable"),
    (["good", "--stage", "reach"], "stage 'reach' is not a CamelCase name (an ASCII capital "
     "letter, then letters and digits); did you mean 'Reach'?"),
    (["good", "--stage", "grid-world"], "did you mean 'GridWorld'?"),
    (["good", "--stage", "Class"], "stage 'Class' would be the module class, a Python keyword"),
    (["good", "--stage", "A", "--stage", "A"], "stage 'A' is given twice"),
    (["good", "--stage", "ABc", "--stage", "ABC"],
     "stages 'ABc' and 'ABC' would share the module abc.py"),
    (["good", "--obs", "image"], "argument --obs: invalid choice"),
])
def test_bad_names_are_one_line_errors_and_write_nothing(capsys, tmp_path, args, message):
    code, _, err = run_main(capsys, "new-env", *args, "--dir", str(tmp_path / "out"))
    assert code == 2
    assert_one_line_error(err)
    assert message in err
    assert not (tmp_path / "out").exists()


def test_an_existing_directory_is_left_alone(capsys, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _, err = run_main(capsys, "new-env", "mine", "--dir", str(tmp_path))
    assert code == 2
    assert_one_line_error(err)
    assert "already exists" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["mine", "notes.txt"]
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.learning
def test_ppo_learns_the_generated_toy(tmp_path, monkeypatch):
    new_env("gymlab_newenv_learn", ["Reach"], tmp_path, obs="dict", action="discrete")
    monkeypatch.syspath_prepend(str(tmp_path / "gymlab_newenv_learn" / "src"))
    agent = PPO("gymlab_newenv_learn/Reach-v0", seed=0, total_steps=30_000, eval_every=0,
                logdir=None, progress=False)
    agent.learn()
    # optimum 0.978 (+1 at the target, -0.01 a step on the shortest path); random 0.27
    assert agent.evaluate(episodes=100).mean >= 0.9


def test_a_namespace_package_that_fails_to_import_is_one_line(tmp_path, monkeypatch):
    from gymlab.core.envs import check_env_id
    from gymlab.core.errors import UserError

    (tmp_path / "gymlab_broken_ns").mkdir()
    (tmp_path / "gymlab_broken_ns" / "__init__.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="importing gymlab_broken_ns to register "
                       "gymlab_broken_ns/Toy-v0 failed: RuntimeError: boom"):
        check_env_id("gymlab_broken_ns/Toy-v0")
    with pytest.raises(UserError, match="unknown environment id 'gymlab_no_such_ns/Toy-v0'"):
        check_env_id("gymlab_no_such_ns/Toy-v0")
