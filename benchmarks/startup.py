"""Whole-process time, as a user runs it: gymlab's PPO command against Stable-Baselines3's
shortest script on CartPole-v1, and gymlab's GA command against the GA tutorial's loop.

Protocol
--------
* Every case is a fresh ``python`` process (this interpreter), timed from its start to its exit
  with ``time.perf_counter`` around ``subprocess.run`` (wall), and by the CPU seconds (user +
  system) the process and its children used (``resource.getrusage(RUSAGE_CHILDREN)``), which
  a busy machine inflates less than wall time; its output is discarded. One torch thread
  everywhere (``--torch-threads 1`` for gymlab, ``torch.set_num_threads(1)`` for SB3).
* Rounds: each round runs every case of the chosen parts once, in the order listed, so a
  change in machine load hits every case alike. Printed: the median and the minimum wall
  seconds and the median CPU seconds of each case over the rounds, the ratios SB3 / gymlab of
  the medians, and the load average (``os.getloadavg``) before and after. On a shared machine
  compare only figures from one invocation.
* Part ``startup`` (what happens before and around the first update):
  - ``python``: ``python -c pass``, the interpreter alone;
  - ``torch``: ``python -c "import torch"``, the floor any torch library starts from;
  - ``gymlab``: ``gymlab train ppo --env CartPole-v1 --total-steps 1`` (run as
    ``python -m gymlab``) with a run directory in a temporary folder and no progress bar:
    one rollout of the tuned 1,024 steps, one update, an evaluation and the checkpoints;
  - ``sb3``: ``PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8, seed=0), **zoo)``
    ``.learn(1)`` with RL-Baselines3-Zoo's CartPole values (benchmarks/cartpole_ppo.py):
    one rollout of 8 x 32 steps and one update, nothing written to disk.
* Part ``solve`` (time to solve, whole process), seed = round number for both:
  - ``gymlab``: ``gymlab train ppo --env CartPole-v1 --seed S --stop-reward 475
    --eval-every 2000 --eval-episodes 10 --total-steps 200000``;
  - ``sb3``: the zoo's configuration as above with SB3's ``EvalCallback`` and
    ``StopTrainingOnRewardThreshold(475)``: 10 deterministic episodes every 2,000 steps
    (250 vectorised steps of 8 environments), cap 200,000 steps.
* Part ``ga`` (the numpy GA tutorial's run, whole process), seed = round number for both:
  - ``gymlab``: ``gymlab train ga --env CartPole-v1 --population 64 --generations 5
    --episodes 15 --mutation-scale 0.1 --max-episode-steps 10000 --eval-every 0``;
  - ``seed loop``: benchmarks/neuroevolution.py's ``run_seed_style_tutorial``, the
    tutorial's loop (one ``env.step`` and one numpy forward per step) driving gymlab's
    ``GeneticAlgorithm`` object with the same generators, so both run the identical search
    (neither side imports torch).

Run:  python benchmarks/startup.py [--rounds 5] [--parts startup,solve,ga]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ZOO = ("n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0, "
       "learning_rate=lambda p: p * 1e-3, clip_range=lambda p: p * 0.2")

SB3_STARTUP = f"""
import torch
torch.set_num_threads(1)
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8, seed=0), seed=0, device="cpu",
    {ZOO}).learn(1)
"""

SB3_SOLVE = f"""
import sys, torch
torch.set_num_threads(1)
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
seed = int(sys.argv[1])
model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8, seed=seed), seed=seed,
            device="cpu", {ZOO})
stop = StopTrainingOnRewardThreshold(reward_threshold=475, verbose=0)
evaluate = EvalCallback(make_vec_env("CartPole-v1", n_envs=1, seed=seed + 1_000_000),
                        callback_on_new_best=stop, eval_freq=2_000 // 8, n_eval_episodes=10,
                        deterministic=True, verbose=0)
model.learn(200_000, callback=evaluate)
"""


SEED_LOOP = """
import sys
sys.path.insert(0, {folder!r})
from neuroevolution import run_seed_style_tutorial
run_seed_style_tutorial(int(sys.argv[1]))
"""


def cases(parts: list[str], logdir: str, seed: int) -> dict[str, list[str]]:
    py = sys.executable
    gymlab = [py, "-m", "gymlab", "train", "ppo", "--env", "CartPole-v1", "--logdir", logdir,
              "--progress", "false", "--torch-threads", "1"]
    out: dict[str, list[str]] = {}
    if "startup" in parts:
        out["startup: python"] = [py, "-c", "pass"]
        out["startup: torch"] = [py, "-c", "import torch"]
        out["startup: gymlab"] = [*gymlab, "--total-steps", "1"]
        out["startup: sb3"] = [py, "-c", SB3_STARTUP]
    if "solve" in parts:
        out["solve: gymlab"] = [*gymlab, "--seed", str(seed), "--stop-reward", "475",
                                "--eval-every", "2000", "--eval-episodes", "10",
                                "--total-steps", "200000"]
        out["solve: sb3"] = [py, "-c", SB3_SOLVE, str(seed)]
    if "ga" in parts:
        out["ga: gymlab"] = [py, "-m", "gymlab", "train", "ga", "--env", "CartPole-v1",
                             "--population", "64", "--generations", "5", "--episodes", "15",
                             "--mutation-scale", "0.1", "--max-episode-steps", "10000",
                             "--eval-every", "0", "--seed", str(seed), "--logdir", logdir,
                             "--progress", "false"]
        folder = os.path.dirname(os.path.abspath(__file__))
        out["ga: seed loop"] = [py, "-c", SEED_LOOP.format(folder=folder), str(seed)]
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command[:6])} ...\n"
                         f"{done.stderr[-2000:]}")
    return wall, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of every case")
    parser.add_argument("--parts", default="startup",
                        help="any of startup, solve, ga, comma-separated")
    args = parser.parse_args()
    parts = args.parts.split(",")
    load_before = os.getloadavg()
    times: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="gymlab-startup-") as logdir:
        for seed in range(args.rounds):
            for name, command in cases(parts, logdir, seed).items():
                times.setdefault(name, []).append(timed(command))
                wall, cpu = times[name][-1]
                print(f"round {seed}: {name} {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}; after: {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f}; {os.cpu_count()} CPUs; {args.rounds} rounds")
    print(f"{'case':<18} {'wall median':>11} {'wall min':>9} {'CPU median':>11}  (seconds)")
    medians: dict[str, tuple[float, float]] = {}
    for name, values in times.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        medians[name] = statistics.median(walls), statistics.median(cpus)
        print(f"{name:<18} {medians[name][0]:>11.2f} {min(walls):>9.2f} {medians[name][1]:>11.2f}")
    for part in parts:
        gymlab = medians.get(f"{part}: gymlab")
        peer = medians.get(f"{part}: sb3") or medians.get(f"{part}: seed loop")
        name = "SB3" if f"{part}: sb3" in medians else "seed loop"
        if gymlab and peer:
            print(f"{part}: {name} / gymlab = {peer[0] / gymlab[0]:.2f}x wall, "
                  f"{peer[1] / gymlab[1]:.2f}x CPU (medians, whole process)")


if __name__ == "__main__":
    main()
