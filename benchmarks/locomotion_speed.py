"""Steps per second of gymlab's MuJoCo task families against the plain gymnasium v5 env.

Protocol
--------
* For each family, ``gym.make("gymlab/<Family>-v0")`` against the model it is built on,
  ``gym.make("HalfCheetah-v5")`` or ``gym.make("Ant-v5")``, both with ``max_episode_steps=200``
  (the families' default horizon), so both carry the same wrappers and reset as often.
* Uniform random actions drawn beforehand from one seeded generator (the same for both);
  ``reset`` whenever an episode ends, counted in the time.
* Rounds alternate (ours, plain, ours, plain, ...), so a change in machine load hits both
  alike. Per round: steps per CPU second of this process (``time.process_time``; MuJoCo and
  this loop are single-threaded, so it is steps/s per core) and per wall second.
* Printed: per family the medians over the rounds and the ratio ours / plain of the median
  CPU rates (1.0 = no overhead), with the load average (``os.getloadavg``) at start and end.
  On a shared machine compare only ratios measured within one invocation.

Run:  python benchmarks/locomotion_speed.py [--rounds 7] [--steps 4000]
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np

import gymlab.envs  # noqa: F401  registers the gymlab/ ids

FAMILIES = {"HalfCheetahVel": "HalfCheetah-v5", "HalfCheetahDir": "HalfCheetah-v5",
            "AntVel": "Ant-v5", "AntDir": "Ant-v5", "AntPos": "Ant-v5"}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rates(env: gym.Env, actions: np.ndarray) -> tuple[float, float]:
    """(steps per CPU second, steps per wall second) over ``actions``, resetting as needed."""
    env.reset(seed=0)
    cpu, wall = time.process_time(), time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return len(actions) / cpu, len(actions) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4000, help="steps per round and env")
    args = parser.parse_args()
    print(f"load average at start: {load()}")
    print(f"{'family':<16}{'ours cpu/s':>12}{'plain cpu/s':>13}{'ours wall/s':>13}"
          f"{'plain wall/s':>14}{'ratio':>8}")
    for family, plain_id in FAMILIES.items():
        ours = gym.make(f"gymlab/{family}-v0", max_episode_steps=200)
        plain = gym.make(plain_id, max_episode_steps=200)
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, size=(args.steps, ours.action_space.shape[0]))
        actions = actions.astype(np.float32)
        rates(ours, actions[:200]), rates(plain, actions[:200])  # warm-up, untimed
        measured: dict[str, list[tuple[float, float]]] = {"ours": [], "plain": []}
        for _ in range(args.rounds):
            measured["ours"].append(rates(ours, actions))
            measured["plain"].append(rates(plain, actions))
        ours_cpu, ours_wall = np.median(measured["ours"], axis=0)
        plain_cpu, plain_wall = np.median(measured["plain"], axis=0)
        print(f"{family:<16}{ours_cpu:>12,.0f}{plain_cpu:>13,.0f}{ours_wall:>13,.0f}"
              f"{plain_wall:>14,.0f}{ours_cpu / plain_cpu:>8.3f}")
    print(f"medians of {args.rounds} alternating rounds of {args.steps} steps; "
          f"ratio = ours / plain steps per CPU second; load average at end: {load()}")


if __name__ == "__main__":
    main()
