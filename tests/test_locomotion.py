"""The MuJoCo task families (gymlab/envs/locomotion.py): rewards recomputed by hand from the
simulator state, the task API, the horizon, and the error without the `mujoco` extra."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import gymlab.envs  # noqa: F401  registers the gymlab/ ids
from gymlab.envs import locomotion
from gymlab.envs.locomotion import MUJOCO_INSTALL_HINT, require_mujoco

needs_mujoco = pytest.mark.skipif(importlib.util.find_spec("mujoco") is None,
                                  reason="the mujoco extra is not installed")

FAMILIES = ["HalfCheetahVel", "HalfCheetahDir", "AntVel", "AntDir", "AntPos"]
TASKS = {  # two tasks per family, far enough apart that their rewards differ on any step
    "HalfCheetahVel": ({"velocity": 0.3}, {"velocity": 1.7}),
    "HalfCheetahDir": ({"direction": 1}, {"direction": -1}),
    "AntVel": ({"velocity": 0.5}, {"velocity": 2.5}),
    "AntDir": ({"direction": -1}, {"direction": 1}),
    "AntPos": ({"goal": np.array([2.0, -1.5])}, {"goal": np.array([-2.5, 0.5])}),
}


def make(name: str, **kwargs) -> gym.Env:
    return gym.make(f"gymlab/{name}-v0", **kwargs)


def torso_xy(env: gym.Env) -> np.ndarray:
    """The torso's (x, y) from the body frame, recomputed from qpos (independent of the env)."""
    import mujoco

    base = env.unwrapped
    mujoco.mj_kinematics(base.model, base.data)
    return base.data.body("torso").xpos[:2].copy()


def expected_reward(name: str, task: dict, xy_before: np.ndarray, xy_after: np.ndarray,
                    action: np.ndarray, env: gym.Env) -> float:
    """The family's reward written out from the issue's formulas and the MAML paper's weights."""
    dt = 5 * 0.01  # frame_skip 5, timestep 0.01 s in both models
    v = (xy_after[0] - xy_before[0]) / dt
    ctrl = float(np.sum(np.square(action, dtype=np.float64)))
    if name == "HalfCheetahVel":
        return -abs(v - task["velocity"]) - 0.05 * ctrl
    if name == "HalfCheetahDir":
        return task["direction"] * v - 0.05 * ctrl
    data = env.unwrapped.data
    contact = 5e-4 * float(np.sum(np.square(np.clip(data.cfrc_ext, -1.0, 1.0))))
    survive = 0.05 if 0.2 <= data.qpos[2] <= 1.0 else 0.0
    if name == "AntVel":
        term = -abs(v - task["velocity"]) + 1.0
    elif name == "AntDir":
        term = task["direction"] * v
    else:
        term = -float(np.abs(xy_after - task["goal"]).sum()) + 4.0
    return term + survive - 0.005 * ctrl - contact


@needs_mujoco
@pytest.mark.parametrize("name", FAMILIES)
def test_reward_and_velocity_by_hand(name: str) -> None:
    task = TASKS[name][1]
    env = make(name, task=task)
    env.reset(seed=3)
    env.action_space.seed(3)
    contact_seen = False
    for _ in range(40):  # the ant lands within these, so the contact cost is exercised too
        xy_before = torso_xy(env)
        action = env.action_space.sample()
        _, reward, terminated, truncated, info = env.step(action)
        xy_after = torso_xy(env)
        velocity = (xy_after[0] - xy_before[0]) / env.unwrapped.dt
        assert info["x_velocity"] == pytest.approx(velocity, rel=1e-9, abs=1e-9)
        assert reward == pytest.approx(
            expected_reward(name, task, xy_before, xy_after, action, env), rel=1e-6, abs=1e-6)
        contact_seen |= info.get("reward_contact", 0.0) < 0.0
        assert not truncated
        if terminated:
            break
    assert env.unwrapped.dt == pytest.approx(0.05)
    if name.startswith("Ant"):
        assert contact_seen, "the contact cost never came into play"
        assert env.observation_space.shape == (105,)
    else:
        assert env.observation_space.shape == (17,)


@needs_mujoco
@pytest.mark.parametrize("name", ["AntVel", "AntDir", "AntPos"])
def test_ant_episode_ends_unhealthy_without_survive_bonus(name: str) -> None:
    env = make(name, task=TASKS[name][0])
    env.reset(seed=0)
    base = env.unwrapped
    qpos = base.data.qpos.copy()
    qpos[2] = 1.5  # torso above z ∈ [0.2, 1.0]: it cannot fall back in one 0.05 s step
    base.set_state(qpos, base.data.qvel)
    xy_before = torso_xy(env)
    action = np.zeros(8, dtype=np.float32)
    _, reward, terminated, _, info = env.step(action)
    assert terminated and info["reward_survive"] == 0.0
    assert reward == pytest.approx(
        expected_reward(name, TASKS[name][0], xy_before, torso_xy(env), action, env))


@needs_mujoco
@pytest.mark.parametrize("name", FAMILIES)
def test_reset_task_changes_the_reward_not_the_dynamics(name: str) -> None:
    first, second = TASKS[name]
    runs = []
    for task in (first, second):
        env = make(name, task=first)
        env.reset(seed=0)
        env.unwrapped.reset_task(task)
        actions = np.random.default_rng(0).uniform(-1, 1, size=(5, env.action_space.shape[0]))
        runs.append([env.step(a.astype(np.float32)) for a in actions])
    for step_a, step_b in zip(*runs):
        np.testing.assert_array_equal(step_a[0], step_b[0])  # same observations
        assert step_a[1] != step_b[1]
    assert runs[1][-1][4]["task"].keys() == second.keys()
    np.testing.assert_array_equal(next(iter(runs[1][-1][4]["task"].values())),
                                  next(iter(second.values())))
    env = make(name)  # the property is the same switch (vector envs use set_attr("task", ...))
    env.unwrapped.task = second
    (key, value), = second.items()
    np.testing.assert_array_equal(env.unwrapped.task[key], value)


@needs_mujoco
@pytest.mark.parametrize("name", FAMILIES)
def test_sample_tasks_is_seeded_and_in_range(name: str) -> None:
    env = make(name).unwrapped
    tasks = env.sample_tasks(200, np.random.default_rng(7))
    env.reset(seed=123)  # the env's own generator plays no part
    again = env.sample_tasks(200, np.random.default_rng(7))
    other = env.sample_tasks(200, np.random.default_rng(8))
    values = np.array([next(iter(t.values())) for t in tasks], dtype=np.float64)
    np.testing.assert_array_equal(values, [next(iter(t.values())) for t in again])
    assert not np.array_equal(values, [next(iter(t.values())) for t in other])
    if name.endswith("Vel"):
        high = 2.0 if name.startswith("HalfCheetah") else 3.0
        assert all(set(t) == {"velocity"} and isinstance(t["velocity"], float) for t in tasks)
        assert values.min() >= 0.0 and values.max() < high and values.max() > 0.9 * high
    elif name.endswith("Dir"):
        assert all(set(t) == {"direction"} and isinstance(t["direction"], int) for t in tasks)
        assert set(values) == {-1.0, 1.0} and 60 < (values == 1).sum() < 140
    else:
        assert values.shape == (200, 2)
        assert values.min() >= -3.0 and values.max() <= 3.0 and np.abs(values).max() > 2.8
    for task in tasks[:3]:
        env.reset_task(task)  # every sampled task is accepted
    assert env.sample_tasks(0, np.random.default_rng(0)) == []
    with pytest.raises(ValueError, match="n >= 0"):
        env.sample_tasks(-1, np.random.default_rng(0))
    with pytest.raises(TypeError, match="np.random.Generator"):
        env.sample_tasks(3, 7)


@needs_mujoco
def test_bad_tasks_are_one_clear_error() -> None:
    with pytest.raises(ValueError, match="direction is -1 .* or \\+1"):
        make("HalfCheetahDir", task={"direction": 0})
    env = make("AntPos").unwrapped
    with pytest.raises(ValueError, match="one key 'goal'"):
        env.reset_task({"velocity": 1.0})
    with pytest.raises(ValueError, match="finite \\(x, y\\) pair"):
        env.reset_task({"goal": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="finite number"):
        make("AntVel").unwrapped.reset_task({"velocity": "fast"})
    with pytest.raises(ValueError, match="finite number"):
        make("HalfCheetahVel", task={"velocity": float("nan")})


@needs_mujoco
@pytest.mark.parametrize("name", FAMILIES)
def test_check_env_and_same_seed_same_numbers(name: str) -> None:
    check_env(make(name, task=TASKS[name][0]).unwrapped, skip_render_check=True)
    runs = []
    for _ in range(2):
        env = make(name, task=TASKS[name][0])
        obs, _ = env.reset(seed=11)
        env.action_space.seed(11)
        steps = [env.step(env.action_space.sample())[:2] for _ in range(5)]
        runs.append((obs, steps))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for (obs_a, r_a), (obs_b, r_b) in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert r_a == r_b


@needs_mujoco
def test_horizon_is_200_by_default_and_configurable() -> None:
    for name in FAMILIES:
        assert gym.spec(f"gymlab/{name}-v0").max_episode_steps == 200
    for horizon, kwargs in ((200, {}), (100, {"max_episode_steps": 100})):
        env = make("HalfCheetahVel", **kwargs)  # HalfCheetah never terminates early
        env.reset(seed=0)
        zero = np.zeros(env.action_space.shape, dtype=np.float32)
        truncated, steps = False, 0
        while not truncated:
            _, _, terminated, truncated, _ = env.step(zero)
            steps += 1
            assert not terminated
        assert steps == horizon


@needs_mujoco
def test_pickle_and_vector_envs_keep_each_task() -> None:
    env = make("AntPos", task={"goal": [1.0, 2.0]}).unwrapped
    env.reset_task({"goal": [-1.0, 0.5]})
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(env)).task["goal"], [-1.0, 0.5])
    envs = gym.vector.SyncVectorEnv([lambda: make("HalfCheetahVel") for _ in range(3)])
    envs.set_attr("task", [{"velocity": 0.5}, {"velocity": 1.0}, {"velocity": 1.5}])
    _, info = envs.reset(seed=0)
    np.testing.assert_array_equal(info["task"]["velocity"], [0.5, 1.0, 1.5])


def test_registering_does_not_import_mujoco() -> None:
    code = ("import sys, gymnasium as gym, gymlab.envs; "
            "assert all(f'gymlab/{n}-v0' in gym.registry for n in "
            f"{FAMILIES!r}); assert 'mujoco' not in sys.modules, 'mujoco was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_mujoco_the_module_imports_and_the_envs_refuse() -> None:
    code = ("import sys; sys.modules['mujoco'] = None\n"  # as if the extra were not installed
            "import gymnasium as gym, gymlab.envs\n"
            "from gymlab.envs.locomotion import HalfCheetahVel, MUJOCO_INSTALL_HINT\n"
            "for make in (HalfCheetahVel, lambda: gym.make('gymlab/AntPos-v0')):\n"
            "    try:\n        make()\n    except ValueError as e:\n"
            "        assert str(e) == MUJOCO_INSTALL_HINT, e\n"
            "    else:\n        raise AssertionError('built without mujoco')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_extra_is_one_line_saying_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mujoco", None)  # `import mujoco` now fails
    with pytest.raises(ValueError) as error:
        require_mujoco()
    message = str(error.value)
    assert message == MUJOCO_INSTALL_HINT and "\n" not in message
    assert 'pip install -e ".[mujoco]"' in message and 'pip install "gymlab[mujoco]"' in message
    for name in FAMILIES:  # every constructor checks first, through gym.make as well
        with pytest.raises(ValueError, match="mujoco` extra"):
            make(name)
        with pytest.raises(ValueError, match="mujoco` extra"):
            getattr(locomotion, name)()
