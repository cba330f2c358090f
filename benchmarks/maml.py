"""MAML benchmark (issue 6): the paper's 2D-navigation protocol, seconds per meta-batch,
and HalfCheetahDir adaptation.

1. paper: meta-train 2D navigation with the default config (pytorch-maml-rl's: 20 tasks x
   20 episodes, 500 batches; --batches to stop earlier), then the MAML paper's protocol: 40
   new goals, 40 episodes per goal with theta and after each of 1..3 policy-gradient steps
   (fast_lr 0.1). Mean return and standard error over the goals, against the paper's
   -40.4 / -11.7 / -3.3 / -3.2. An interrupted run continues where it stopped (--run-dir).
2. speed: wall and CPU seconds per meta-batch at the 2D navigation config (20 tasks x 20
   episodes x 2 phases, ~80k env steps), median over --speed-batches batches, against the
   issue's figure for pytorch-maml-rl on this machine (7.3 CPU-s per batch with one torch
   thread). That reference cannot be downloaded here, so it is the issue's number, not
   re-run by this script.
3. cheetah: HalfCheetahDir-v0 (needs the mujoco extra): before- and after-update returns
   over --cheetah-batches meta-batches of a small budget (--cheetah-tasks tasks, 20
   episodes, horizon 200), then the adaptation curve (0 and 1 step) on as many new tasks.

    python benchmarks/maml.py --parts paper,speed,cheetah [--batches 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from gymlab.agents.maml import MAML

PAPER = {0: -40.4, 1: -11.7, 2: -3.3, 3: -3.2}
REFERENCE_CPU_SECONDS = 7.3


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def paper(batches: int, run_dir: Path, seed: int) -> None:
    print(f"[paper] load: {load()}", flush=True)
    if (run_dir / "checkpoints" / "last.pt").exists():
        agent = MAML.resume(run_dir, num_batches=batches, progress=False)
        print(f"[paper] resuming {run_dir} at batch {agent.batch}", flush=True)
    else:
        agent = MAML(env="Navigation2D-v0", seed=seed, output_folder=str(run_dir),
                     progress=False, num_batches=batches)
    start = time.perf_counter()
    with agent:
        agent.learn()
        print(f"[paper] trained to batch {agent.batch} ({time.perf_counter() - start:.0f} s "
              f"this call); load: {load()}", flush=True)
        curve = agent.adaptation_curve(tasks=40, grad_steps=3, episodes=40)
    rows = []
    for step, (mean, se) in enumerate(zip(curve.mean, curve.stderr)):
        rows.append({"steps": step, "mean": float(mean), "stderr": float(se),
                     "paper": PAPER[step]})
        verdict = "better" if mean >= PAPER[step] - se else "worse"
        print(f"[paper] after {step} step(s): {mean:8.2f} ± {se:.2f}   paper {PAPER[step]:6.1f}"
              f"   ({verdict} within one s.e.)", flush=True)
    (run_dir / "paper_protocol.json").write_text(json.dumps(
        {"batches": agent.batch, "rows": rows}, indent=2) + "\n")


def speed(batches: int) -> None:
    agent = MAML(env="Navigation2D-v0", seed=0, output_folder=None, progress=False)
    walls, cpus, steps = [], [], []
    print(f"[speed] load before: {load()}", flush=True)
    with agent:
        for _ in range(batches):
            scalars = agent.train_batch()
            walls.append(scalars["time/batch_seconds"])
            cpus.append(scalars["time/batch_cpu_seconds"])
            steps.append(scalars["time/env_steps"])
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"[speed] load after: {load()}")
    print(f"[speed] {batches} batches of 20 tasks x 20 episodes x 2 phases "
          f"(median {statistics.median(steps):.0f} env steps): median {wall:.2f} wall-s, "
          f"{cpu:.2f} CPU-s per batch")
    print(f"[speed] pytorch-maml-rl (the issue's figure, not re-run here): "
          f"{REFERENCE_CPU_SECONDS} CPU-s per batch -> gymlab is "
          f"{REFERENCE_CPU_SECONDS / cpu:.2f}x faster in CPU-s")


def cheetah(batches: int, tasks: int, workers: int) -> None:
    print(f"[cheetah] load before: {load()}", flush=True)
    agent = MAML(env="HalfCheetahDir-v0", seed=0, meta_batch_size=tasks, progress=False,
                 num_batches=batches, num_workers=workers,
                 output_folder=f"runs/bench-maml-cheetah-{time.strftime('%H%M%S')}")
    start = time.perf_counter()
    with agent:
        for _ in range(batches):
            scalars = agent.train_batch()
            before = scalars["total_rewards/before_update"]
            after = scalars["total_rewards/after_update"]
            print(f"[cheetah] batch {agent.batch}: before {before:8.2f}  after {after:8.2f}"
                  f"  ({scalars['time/batch_seconds']:.1f} s)", flush=True)
        print(f"[cheetah] {batches} batches of {tasks} tasks x 20 episodes in "
              f"{time.perf_counter() - start:.0f} s; load: {load()}", flush=True)
        curve = agent.adaptation_curve(tasks=tasks, grad_steps=1, episodes=20)
    for line in curve.table():
        print(f"[cheetah] {tasks} new tasks, 20 episodes each, {line}")
    print(f"[cheetah] load after: {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="paper,speed,cheetah")
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--run-dir", default="runs/bench-maml-nav")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-batches", type=int, default=5)
    parser.add_argument("--cheetah-batches", type=int, default=10)
    parser.add_argument("--cheetah-tasks", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "speed" in parts:
        speed(args.speed_batches)
    if "paper" in parts:
        paper(args.batches, Path(args.run_dir), args.seed)
    if "cheetah" in parts:
        cheetah(args.cheetah_batches, args.cheetah_tasks, args.workers)


if __name__ == "__main__":
    main()
