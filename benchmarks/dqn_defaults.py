"""Choosing DQN's defaults for environments without a tuned entry: tune on some tasks, report
on others.

Protocol
--------
* Every run is ``DQN(env, seed=s, logdir=None, progress=False, eval_every=5_000,
  total_steps=budget, **candidate).learn()``. The environment ids below are registered by this
  script under ``gymlab_bench/``, so no entry of ``DQN.TUNED`` applies: a candidate is the
  whole story.
* An evaluation is 10 deterministic (greedy) episodes every 5,000 steps (the Session's
  Evaluator, seeded ``s + 1_000_000``). Per run: the mean return of the evaluation at the
  budget ("final") and the first evaluation step whose mean reached the task's threshold.
* ``--part tune`` (seeds 0-2) runs every candidate on the TUNING tasks; the defaults are the
  candidate with the highest mean normalised final return over tasks and seeds, normalised
  as (return - floor) / (threshold - floor) clipped to [0, 1]; ties (within 0.02) go to the
  higher worst seed. Nothing else is used to choose.
* ``--part report`` (seeds 10-14) runs the shipped defaults (``DQNConfig()`` as it is now) and
  the previous defaults on the HELD-OUT tasks, which were never run while choosing.
* One torch thread. The load average (``os.getloadavg``) is printed at start and end.

Tasks
-----
TUNING
  ``CartPoleBox-v1``: CartPole with 200-step episodes and each observation dimension scaled
  (features of unequal size, as a user's own environment has them); threshold 195.
  ``Acrobot-v1``: gymnasium's Acrobot under a new id; threshold -100.
HELD-OUT
  ``CartPoleDict-v1``: CartPole-v1 (500 steps) with its observation split into a Dict
  {"cart": (x, x_dot), "pole": (theta, theta_dot)}, the case issue 17 names; threshold 400.
  ``Contextual-v0``: Dict observation (a Box and a Discrete) and a MultiDiscrete([3, 2])
  action: reward 1 when the first action picks the Discrete value and the second tells the
  sign of the Box's first entry; 10 steps an episode, random play scores 1.67; threshold 9.

Run:  python benchmarks/dqn_defaults.py --part tune | --part report
      [--seeds 0-2] [--candidates gymlab-0,sb3] [--tasks CartPoleDict-v1] [--steps 100000]
      (--steps 100000 is RunConfig's default total_steps: what a user's run gets)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from gymlab import DQN

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests/ envs
from tests.envs import DictMultiDiscreteEnv, make_dict_cartpole  # noqa: E402

EVAL_EVERY = 5_000


# -- tasks --------------------------------------------------------------------------------------
class ScaledObservation(gym.ObservationWrapper):
    SCALE = np.array([0.5, 2.0, 10.0, 0.5], np.float32)

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        box = env.observation_space
        self.observation_space = gym.spaces.Box(box.low * self.SCALE, box.high * self.SCALE,
                                                dtype=np.float32)

    def observation(self, obs: np.ndarray) -> np.ndarray:
        return (obs * self.SCALE).astype(np.float32)


@dataclass(frozen=True)
class Task:
    env_id: str
    budget: int
    threshold: float
    floor: float
    """Return that scores 0 when normalising (about random play)."""


TUNING = [Task("gymlab_bench/CartPoleBox-v1", 60_000, 195.0, 0.0),
          Task("gymlab_bench/Acrobot-v1", 60_000, -100.0, -500.0)]
HELD_OUT = [Task("gymlab_bench/CartPoleDict-v1", 60_000, 400.0, 0.0),
            Task("gymlab_bench/Contextual-v0", 20_000, 9.0, 1.67)]


def register() -> None:
    makers = {
        "CartPoleBox-v1": (lambda render_mode=None: ScaledObservation(
            CartPoleEnv(render_mode=render_mode)), 200),
        "Acrobot-v1": ("gymnasium.envs.classic_control.acrobot:AcrobotEnv", 500),
        "CartPoleDict-v1": (make_dict_cartpole, 500),
        "Contextual-v0": (DictMultiDiscreteEnv, None),
    }
    for name, (entry_point, max_steps) in makers.items():
        if f"gymlab_bench/{name}" not in gym.registry:
            gym.register(f"gymlab_bench/{name}", entry_point=entry_point,
                         max_episode_steps=max_steps)


# -- candidates ---------------------------------------------------------------------------------
PREVIOUS = {  # gymlab's DQNConfig defaults before this benchmark
    "learning_rate": 1e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1_000,
    "target_update_interval": 500, "train_freq": 4, "gradient_steps": 1,
    "exploration_fraction": 0.1, "exploration_final_eps": 0.05, "double_q": False,
    "max_grad_norm": None, "hidden_sizes": (64, 64),
}
CANDIDATES: dict[str, dict[str, Any]] = {
    "gymlab-0": PREVIOUS,
    # Stable-Baselines3 2.x DQN defaults (tuned for Atari at 10M steps)
    "sb3": {**PREVIOUS, "learning_rate": 1e-4, "batch_size": 32, "buffer_size": 1_000_000,
            "learning_starts": 100, "target_update_interval": 10_000, "max_grad_norm": 10.0},
    # the previous defaults with a target network that follows 5x sooner, and Double DQN
    # against the overestimation a fresher target brings
    "fast-target": {**PREVIOUS, "target_update_interval": 100, "double_q": True},
    # gymlab's tuned CartPole-v1 entry, as if it were general
    "cartpole-tuned": {**PREVIOUS, **{k: v for k, v in DQN.TUNED["CartPole-v1"].items()
                                       if k not in ("total_steps", "stop_reward")}},
    # wider network, larger batches, clipped gradients: robustness over speed
    "wide-clipped": {**PREVIOUS, "learning_rate": 6.3e-4, "batch_size": 128,
                     "target_update_interval": 250, "double_q": True, "max_grad_norm": 10.0,
                     "hidden_sizes": (128, 128)},
}
REPORTED = {"defaults": {}, "gymlab-0": PREVIOUS}
"""The report part's configurations: DQNConfig's current defaults, and the previous ones."""


# -- runs ---------------------------------------------------------------------------------------
@dataclass
class Run:
    final: float = float("nan")
    reached: int | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)
    wall_s: float = 0.0


def run(task: Task, seed: int, overrides: dict[str, Any]) -> Run:
    result = Run()

    def on_eval(step: int, evaluation: Any) -> bool:
        result.curve.append((step, evaluation.mean))
        if result.reached is None and evaluation.mean >= task.threshold:
            result.reached = step
        return False

    start = time.perf_counter()
    agent = DQN(task.env_id, seed=seed, logdir=None, progress=False, eval_every=EVAL_EVERY,
                total_steps=task.budget, **overrides).learn(on_eval=on_eval)
    agent.close()
    result.wall_s = time.perf_counter() - start
    result.final = result.curve[-1][1] if result.curve else float("nan")
    return result


def normalised(task: Task, value: float) -> float:
    return float(np.clip((value - task.floor) / (task.threshold - task.floor), 0.0, 1.0))


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("tune", "report"), required=True)
    parser.add_argument("--seeds", help="e.g. 0-2 or 10,11 (default: 0-2 tune, 10-14 report)")
    parser.add_argument("--candidates", help="comma-separated names (default: all of the part)")
    parser.add_argument("--tasks", help="comma-separated env ids without gymlab_bench/ "
                                        "(default: all of the part)")
    parser.add_argument("--steps", type=int, help="budget of every task (default: the task's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    register()
    tune = args.part == "tune"
    tasks = TUNING if tune else HELD_OUT
    if args.tasks:
        tasks = [t for t in tasks if t.env_id.split("/")[1] in args.tasks.split(",")]
    if args.steps:
        tasks = [dataclasses.replace(t, budget=args.steps) for t in tasks]
    configs = CANDIDATES if tune else REPORTED
    if args.candidates:
        configs = {name: configs[name] for name in args.candidates.split(",")}
    seeds = parse_seeds(args.seeds or ("0-2" if tune else "10-14"))
    print(f"part {args.part}, seeds {seeds}, load average at start "
          f"{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)

    runs: dict[tuple[str, str], list[Run]] = {}
    for name, overrides in configs.items():
        for task in tasks:
            for seed in seeds:
                r = run(task, seed, overrides)
                runs.setdefault((name, task.env_id), []).append(r)
                curve = " ".join(f"{v:.0f}" for _, v in r.curve)
                print(f"{name:15} {task.env_id:30} seed {seed:2}  final {r.final:8.1f}  "
                      f"reached {r.reached or '-':>6}  {r.wall_s:5.1f}s  curve {curve}",
                      flush=True)

    print("\n| candidate | task | final return, mean ± std (per seed) | reached threshold "
          "| steps to threshold (median) |\n|---|---|---|---|---|")
    for (name, env_id), rs in runs.items():
        finals = [r.final for r in rs]
        reached = [r.reached for r in rs if r.reached is not None]
        median = f"{statistics.median(reached):,.0f}" if reached else "-"
        print(f"| {name} | {env_id.split('/')[1]} | {np.mean(finals):.1f} ± {np.std(finals):.1f}"
              f" ({', '.join(f'{f:.0f}' for f in finals)}) | {len(reached)}/{len(rs)} "
              f"| {median} |")
    if tune:
        print("\n| candidate | score (mean normalised final) | worst seed (mean over tasks) |"
              "\n|---|---|---|")
        for name in configs:
            per_seed = np.mean([[normalised(t, r.final) for r in runs[(name, t.env_id)]]
                                for t in tasks], axis=0)
            print(f"| {name} | {per_seed.mean():.3f} | {per_seed.min():.3f} |")
    print(f"load average at end {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
