"""MAML's sampling spread over worker processes and Ray actors: the same episodes as one
process, workers that end with their parent, and a Ray address that cannot be reached."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from gymlab.agents.maml import MAML
from gymlab.agents.maml.policy import make_policy
from gymlab.agents.maml.samplers import VectorEnvBatch, rollout
from tests.processes import workers_left_after_kill
from tests.test_cli import assert_one_line_error, run_main
from tests.test_maml import final_state, records

ROOT = Path(__file__).resolve().parents[1]

# The parent starts a worker as VectorEnvBatch does, then forks a child that sleeps on with a
# copy of the pipe, so the worker's pipe does not reach its end when the parent is killed:
# only the parent-death signal and the pid watcher (gymlab.core.processes) end the worker.
KILLED_PARENT = """
import os, time
from gymlab.agents.maml.env_workers import start_worker

if __name__ == "__main__":
    pipe, proc = start_worker("gymlab/Navigation2D-v0", {}, 2)
    pipe.send(("reset", [{"goal": [0.1, 0.2]}] * 2, [1, 2]))
    pipe.recv()
    if os.fork() == 0:
        time.sleep(12)
        os._exit(0)
    print(proc.pid, flush=True)
    input()  # wait to be killed
"""


def test_sampler_workers_end_when_their_parent_is_killed():
    assert workers_left_after_kill(KILLED_PARENT, ROOT, workers=1) == []


def episodes_of(env, tasks, episodes=2):
    """Two rounds of episodes of a small Gaussian policy, from fixed generators."""
    torch.manual_seed(0)
    probe = gym.make("gymlab/AntDir-v0")
    policy = make_policy(probe.observation_space, probe.action_space, "auto", (8,), "tanh")
    probe.close()
    generator = torch.Generator().manual_seed(3)
    seeds = np.arange(len(tasks) * episodes) + 100
    first = rollout(env, policy, None, tasks, episodes, generator, seeds, action_scale=10.0)
    return first, rollout(env, policy, None, tasks, episodes, generator, seeds + 50, 10.0)


def test_worker_processes_collect_the_episodes_of_one_process():
    """AntDir, 3 tasks x 2 episodes, split over 1 and 3 parts (two worker processes)."""
    pytest.importorskip("mujoco")
    tasks = gym.make("gymlab/AntDir-v0").unwrapped.sample_tasks(3, np.random.default_rng(4))
    kwargs = {"max_episode_steps": 15}
    results = []
    for workers in (1, 3):
        env = VectorEnvBatch("gymlab/AntDir-v0", kwargs, 3, 2, num_workers=workers)
        try:
            results.append(episodes_of(env, tasks))
        finally:
            env.close()
    for one, many in zip(*results):
        for name in ("obs", "actions", "rewards", "mask"):
            assert torch.equal(getattr(one, name), getattr(many, name)), name


@pytest.mark.smoke
def test_a_run_on_ray_actors_equals_one_process(tmp_path):
    """A HalfCheetahVel meta-batch sampled by two Ray actors (a local Ray): the parameters
    and every logged number of the same run in one process."""
    pytest.importorskip("mujoco")
    pytest.importorskip("ray")
    runs = []
    for name, where in (("one", {}), ("ray", {"ray_address": "local", "num_workers": 2})):
        with MAML(env="HalfCheetahVel-v0", meta_batch_size=2, fast_batch_size=2,
                  max_episode_steps=10, num_batches=1, progress=False, seed=3,
                  output_folder=str(tmp_path / name), **where) as agent:
            agent.learn()
            runs.append((final_state(agent), records(tmp_path / name)))
            if name == "ray":
                assert all(len(s.actors) == 2 for s in agent._samplers.values())
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]


@pytest.mark.smoke
def test_an_unreachable_ray_address_is_one_line_and_exit_2(tmp_path, capsys):
    pytest.importorskip("ray")
    code, _, err = run_main(capsys, "train", "maml", "--ray-address", "127.0.0.1:1",
                            "--num-batches", "1", "--logdir", str(tmp_path))
    assert code == 2 and "cannot reach a Ray cluster at 127.0.0.1:1" in err
    assert_one_line_error(err)
    assert not any(tmp_path.iterdir())  # refused before a run directory was made
