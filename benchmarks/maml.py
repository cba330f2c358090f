"""MAML benchmark: the paper's 2D-navigation protocol, seconds per meta-batch,
and HalfCheetahDir adaptation.

1. paper: meta-train 2D navigation with the MAML authors' own hyperparameters (PAPER_CONFIG,
   from cbfinn/maml_rl; --config pytorch-maml-rl for MAMLConfig's defaults instead, or
   pytorch-maml-rl-scaled for those with actions divided by 10), for
   --batches meta-batches (default: the authors' 100), then the MAML paper's protocol: 40
   new goals, 40 episodes per goal with theta and after each of 1..3 policy-gradient steps
   of the run's default test step sizes (MAML.default_test_lr: fast_lr, then a fraction of
   it, each policy's own chosen on validation tasks or later_step_fraction, halved at each
   further step; --later-step-tasks N overrides the run's setting; or --test-lr, e.g. the
   authors' test 0.5,0.25). Mean return and standard error over the goals, for the final
   policy and for best.pt, against the paper's -40.4 / -11.7 / -3.3 / -3.2. An interrupted
   run continues where it stopped (--run-dir; its own config is kept).
2. speed: CPU and wall seconds per meta-batch at pytorch-maml-rl's 2D-navigation config (20
   tasks x 20 episodes x 2 phases, ~80k env steps), medians over --speed-batches batches, of
   five meta-updates run on the same sampled batches, interleaved (SPEED_PATHS:
   pytorch-maml-rl's method re-stated on gymlab's tensors, gymlab's autograd path, gymlab's
   hand-derived path on torch ops, and on native.py's fused sweeps with 1 and 2 threads),
   and gymlab against the issue's figure for pytorch-maml-rl itself on this machine (7.3
   CPU-s per batch with one torch thread; its code cannot be downloaded here, so that number
   is the issue's, not re-run by this script).
3. training: the plain training loop (MAML.train_batch: sampling and meta-update, as a run
   does it), CPU and wall seconds per batch, medians over --speed-batches batches, in fresh
   processes that alternate: glibc's allocator as it comes, and as gymlab sets it
   (gymlab/agents/maml/allocator.py), both on torch ops, then gymlab as it runs (native.py's
   sweeps), on one thread and with num_workers 2 (two threads).
4. cheetah: HalfCheetahDir-v0 (needs the mujoco extra): before- and after-update returns
   over --cheetah-batches meta-batches of a small budget (--cheetah-tasks tasks, 20
   episodes, horizon 200), then the adaptation curve (0 and 1 step) on
   --cheetah-eval-tasks new tasks (the paper's 40).
5. workers: seconds per HalfCheetahDir meta-batch (--workers-tasks tasks x 20 episodes,
   horizon 200) with each of --worker-counts sampler workers, and on Ray actors with
   --ray-address; the runs alternate batch by batch and must end with equal parameters.

    python benchmarks/maml.py --parts paper,speed,training,cheetah [--batches 100]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from gymlab.agents.maml import MAML, MAMLConfig, fast, trainer
from gymlab.agents.maml import metalearner as ml
from gymlab.agents.maml.config import FAMILY_DEFAULTS
from gymlab.agents.maml.fast import native
from gymlab.agents.maml.trpo import flat

PAPER = {0: -40.4, 1: -11.7, 2: -3.3, 3: -3.2}

# The MAML authors' 2D-navigation run, cbfinn/maml_rl maml_examples/maml_trpo_point.py:
# fast_learning_rate 0.5, meta_batch_size 40, fast_batch_size 20 trajectories, horizon 100,
# one inner step, TRPO step_size 0.01, n_itr 100, LinearFeatureBaseline, a Gaussian MLP
# (100, 100) with ReLU, init std 1 and a learned log-std; the env wrapped in rllab's
# normalize(), which maps the policy's [-1, 1] onto the action box [-0.1, 0.1] (then clips),
# i.e. divides the action by 10: action_scale 10. Their test (test_maml_point.py): 40 goals,
# VPG on 4000-step batches (40 episodes of 100 steps), optimizer_args init_learning_rate 0.5
# and learning_rate 0.5 * 0.5: the first step 0.5, the later ones 0.25 (as stored, their TF
# optimizer ignores init_learning_rate, which would make every step 0.25: --test-lr 0.25).
# The policy that test loads is named trpomaml1_fbs20_mbs20_flr_0.5...: an earlier run with
# 20 tasks per meta-batch (--config paper keeps the script's 40).
PAPER_CONFIG = {"fast_lr": 0.5, "meta_batch_size": 40, "fast_batch_size": 20,
                "num_steps": 1, "max_kl": 0.01, "hidden_size": 100, "num_layers": 2,
                "nonlinearity": "relu", "action_scale": 10.0}
PAPER_BATCHES = 100
PYTORCH_MAML_RL = {name: getattr(MAMLConfig, name)
                   for name in FAMILY_DEFAULTS["Navigation2D-v0"] if name != "num_batches"}
"""pytorch-maml-rl's 2d-navigation config: MAMLConfig's defaults in place of every setting
the family's own defaults (the authors' run) change, the number of batches aside (paper_run
passes it): what the speed and training parts time."""
CONFIGS = {"paper": PAPER_CONFIG, "pytorch-maml-rl": PYTORCH_MAML_RL,
           "pytorch-maml-rl-scaled": {**PYTORCH_MAML_RL, "action_scale": 10.0},
           "pytorch-maml-rl-scaled-lr0.2": {**PYTORCH_MAML_RL, "action_scale": 10.0,
                                            "fast_lr": 0.2},
           "paper-2-steps": {**PAPER_CONFIG, "num_steps": 2},
           "paper-20-tasks": {**PAPER_CONFIG, "meta_batch_size": 20},
           "paper-40-episodes": {**PAPER_CONFIG, "fast_batch_size": 40}}
"""--config: the authors' run; MAMLConfig's defaults (pytorch-maml-rl's 2d-navigation
config: fast_lr 0.1, 20 tasks, 2 x 64 tanh, actions not scaled, 500 batches); or those with
the authors' action scale of 10 (100 batches), the one change that mattered in our runs;
or those with an inner step size of 0.2; or the authors' run meta-trained through two inner
steps (test it with --test-lr 0.5,0.5,0.25), with 20 tasks per meta-batch (the batch of the
policy their test script loads), or with 40 episodes per task (as many as the test adapts on)."""
REFERENCE_CPU_SECONDS = 7.3


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def paper(batches: int | None, run_dir: Path, seeds: list[int], config: str,
          test_lr: list[float] | None, testing: dict[str, int]) -> None:
    """Train (or resume) one run per seed, then the paper's protocol on each run's final
    policy and best.pt; a table per seed and the mean over seeds."""
    results: dict[str, list[dict[str, object]]] = {}
    for seed in seeds:
        directory = run_dir if len(seeds) == 1 else Path(f"{run_dir}-s{seed}")
        for name, rows in paper_run(batches, directory, seed, config, test_lr,
                                    testing).items():
            results.setdefault(name, []).append(rows)
    if len(seeds) > 1:
        summary(results, seeds)


def paper_run(batches: int | None, run_dir: Path, seed: int, config: str,
              test_lr: list[float] | None, testing: dict[str, int]
              ) -> dict[str, dict[str, object]]:
    """One seed's run, trained or resumed, and the protocol on its final policy and best.pt;
    `testing` overrides the run's test-time settings (later_step_tasks)."""
    print(f"[paper] load: {load()}", flush=True)
    if (run_dir / "checkpoints" / "last.pt").exists():
        overrides = {} if batches is None else {"num_batches": batches}
        agent = MAML.resume(run_dir, progress=False, **overrides, **testing)
        print(f"[paper] resuming {run_dir} at batch {agent.step} (its own config)", flush=True)
    else:
        if batches is None:
            batches = MAMLConfig.num_batches if config == "pytorch-maml-rl" else PAPER_BATCHES
        agent = MAML(env="Navigation2D-v0", seed=seed, output_folder=str(run_dir),
                     progress=False, num_batches=batches, **CONFIGS[config], **testing)
        print(f"[paper] --config {config}", flush=True)
    cfg = agent.config
    print(f"[paper] config: fast_lr {cfg.fast_lr}, meta_batch_size {cfg.meta_batch_size}, "
          f"fast_batch_size {cfg.fast_batch_size}, {cfg.num_layers} x {cfg.hidden_size} "
          f"{cfg.nonlinearity}, action_scale {cfg.action_scale}, max_kl {cfg.max_kl}, "
          f"{cfg.num_batches} batches, seed {agent.run_config.seed}", flush=True)
    # the test's step sizes: by default the run's own (fast_lr, halved at each further step)
    schedules: list[list[float] | None] = [test_lr] if test_lr else [None]
    start = time.perf_counter()
    results: dict[str, dict[str, object]] = {}
    with agent:
        agent.learn()
        print(f"[paper] trained to batch {agent.step} ({time.perf_counter() - start:.0f} s "
              f"this call); load: {load()}", flush=True)
        for lrs in schedules:
            results[f"final {lrs or 'default'}"] = protocol(
                agent, lrs, f"seed {seed} final (batch {agent.step})")
    with MAML.load(run_dir / "checkpoints" / "best.pt", **testing) as best:
        for lrs in schedules:
            results[f"best.pt {lrs or 'default'}"] = protocol(
                best, lrs, f"seed {seed} best.pt (batch {best.step})")
    (run_dir / "paper_protocol.json").write_text(
        json.dumps({"batches": agent.step, **results}, indent=2) + "\n")
    return results


def protocol(agent: MAML, lrs: list[float] | None, name: str) -> dict[str, object]:
    """The paper's protocol on `agent`: 40 new goals, 40 episodes, 0..3 steps of `lrs`
    (none: the run's default schedule, its second step chosen on validation tasks when the
    run's later_step_tasks says so)."""
    start = time.perf_counter()
    lrs = agent.default_test_lr(3) if lrs is None else lrs
    chosen = time.perf_counter() - start
    curve = agent.adaptation_curve(tasks=40, grad_steps=3, episodes=40, fast_lr=lrs)
    steps = ", ".join(f"{lr:g}" for lr in trainer.step_sizes(lrs, 3))
    if agent.config.later_step_tasks:
        steps += (f" (the second chosen on {agent.config.later_step_tasks} validation tasks "
                  f"in {chosen:.0f} s)")
    rows = []
    for step, (mean, se) in enumerate(zip(curve.mean, curve.stderr)):
        rows.append({"steps": step, "mean": float(mean), "stderr": float(se),
                     "paper": PAPER[step]})
    print(f"[paper] {name}, step sizes {steps}: " + " | ".join(
        f"{r['mean']:7.2f} ± {r['stderr']:.2f}" for r in rows), flush=True)
    return {"batch": agent.step, "step_sizes": lrs, "rows": rows}


def summary(results: dict[str, list[dict[str, object]]], seeds: list[int]) -> None:
    """Per policy and schedule: the mean over seeds of each seed's mean over its 40 goals,
    with the standard error over seeds, against the paper."""
    print(f"[paper] over seeds {', '.join(map(str, seeds))}: mean ± standard error over "
          f"seeds (each seed: its mean over its 40 goals)", flush=True)
    for name, runs in results.items():
        means = [[row["mean"] for row in run["rows"]] for run in runs]  # type: ignore[index]
        cells, previous, monotone = [], -float("inf"), True
        for step in range(4):
            values = [m[step] for m in means]
            mean = statistics.fmean(values)
            se = statistics.stdev(values) / len(values) ** 0.5
            mark = "*" if step and mean >= PAPER[step] - se else " "
            cells.append(f"{mean:7.2f} ± {se:.2f}{mark}")
            monotone &= step == 0 or mean >= previous
            previous = mean
        print(f"[paper]   {name:22s} " + " | ".join(cells)
              + f"   ({'no step worse than the one before' if monotone else 'a step got worse'})",
              flush=True)
    print(f"[paper]   {'the MAML paper':22s} " + " | ".join(
        f"{PAPER[step]:7.1f}       " for step in range(4))
        + "   (*: within one standard error of the paper, or better)", flush=True)


SPEED_PATHS = ("reference-method", "autograd", "torch-ops", "gymlab", "gymlab-2-threads")
"""The meta-update by pytorch-maml-rl's method, re-stated on gymlab's batched tensors (the
KL's gradient differentiated again through the inner update for each product, and an 11th
product for the step length; its Python loop over tasks is not modelled, so this is faster
than the reference itself), by gymlab's autograd path (J^T M J), by the hand-derived path
on torch ops (native.py's sweeps off), and by gymlab's default, the hand-derived path on
native.py's sweeps, on 1 and 2 threads."""


def meta_update(path: str, policy, batch, cfg) -> None:
    if path == "gymlab":
        ml.trpo_step(policy, fast.meta_objective(policy, batch, cfg), cfg)
    elif path == "torch-ops":
        usable, native.usable = native.usable, lambda like: False
        try:
            ml.trpo_step(policy, fast.meta_objective(policy, batch, cfg), cfg)
        finally:
            native.usable = usable
    elif path == "gymlab-2-threads":
        cfg = dataclasses.replace(cfg, num_workers=2)
        ml.trpo_step(policy, fast.meta_objective(policy, batch, cfg), cfg)
    else:
        objective = (ReferenceMethodObjective if path == "reference-method"
                     else ml.AutogradMetaObjective)
        ml.trpo_step(policy, objective(policy, batch, cfg), cfg)


def hessian_vector_product(kl: torch.Tensor, params: list[torch.Tensor], damping: float):
    """v -> (H + damping I) v with H the exact Hessian of `kl` in `params`, the generic way:
    the first derivative taken once with its graph, each product differentiating its dot
    with v again (through whatever `kl` was computed from: here, the inner update)."""
    grads = flat(torch.autograd.grad(kl, params, create_graph=True))

    def product(vector: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(grads @ vector.detach(), params, retain_graph=True)
        return flat(hv) + damping * vector

    return product


class ReferenceMethodObjective(ml.AutogradMetaObjective):
    """pytorch-maml-rl's Hessian products: (grad KL . v) differentiated again, through the
    inner update (the generic form, trpo.hessian_vector_product), and one more product
    before the line search (its step length: CG's result times the Hessian)."""

    def __init__(self, policy, batch, cfg) -> None:
        super().__init__(policy, batch, cfg)
        _, kl, *_ = ml.surrogate(policy, self.params, batch, cfg, self.old, True)
        self.product = hessian_vector_product(kl, self.leaves, cfg.cg_damping)
        self.last: torch.Tensor | None = None

    def fisher_product(self, vector: torch.Tensor) -> torch.Tensor:
        self.last = vector
        return self.product(vector)

    def evaluate(self, theta: torch.Tensor) -> tuple[float, float]:
        if self.last is not None:
            self.product(self.last)
            self.last = None
        return super().evaluate(theta)


def speed(batches: int) -> None:
    """Every path meta-updates its own copy of the policy from the same sampled batches,
    interleaved, so the ratios come from one run on one machine state."""
    agent = MAML(env="Navigation2D-v0", seed=0, output_folder=None, progress=False,
                 **PYTORCH_MAML_RL)
    cfg = agent.config
    cpu: dict[str, list[float]] = {p: [] for p in ("sampling", *SPEED_PATHS)}
    wall: dict[str, list[float]] = {p: [] for p in cpu}
    steps = []
    print(f"[speed] load before: {load()}", flush=True)
    with agent:
        for _ in range(batches):
            tasks = agent.family.unwrapped.sample_tasks(cfg.meta_batch_size, agent.task_rng)
            c, w = time.process_time(), time.perf_counter()
            batch = agent.sample_meta_batch(tasks)
            cpu["sampling"].append(time.process_time() - c)
            wall["sampling"].append(time.perf_counter() - w)
            steps.append(sum(e.steps for e in batch.train) + batch.valid.steps)
            copies = {p: copy.deepcopy(agent.policy) for p in SPEED_PATHS}
            for path, policy in copies.items():
                c, w = time.process_time(), time.perf_counter()
                meta_update(path, policy, batch, cfg)
                cpu[path].append(time.process_time() - c)
                wall[path].append(time.perf_counter() - w)
            theta = {p: flat(m.parameters()) for p, m in copies.items()}
            drift = max((t - theta["gymlab"]).norm().item() for t in theta.values())
            agent.policy.load_state_dict(copies["gymlab"].state_dict())
            print(f"[speed] batch {agent.step + 1}: meta-update CPU-s "
                  + ", ".join(f"{p} {cpu[p][-1]:.2f}" for p in SPEED_PATHS)
                  + f"; paths' parameters within {drift:.1e}", flush=True)
            agent.step += 1
    print(f"[speed] load after: {load()}")
    # per batch: sampling plus each path's meta-update
    total_cpu = {p: statistics.median(cpu["sampling"]) + statistics.median(cpu[p])
                 for p in SPEED_PATHS}
    total_wall = {p: statistics.median(wall["sampling"]) + statistics.median(wall[p])
                  for p in SPEED_PATHS}
    reference = SPEED_PATHS[0]
    print(f"[speed] median per batch over {batches} batches of 20 tasks x 20 episodes x 2 "
          f"phases ({statistics.median(steps):.0f} env steps), sampling "
          f"{statistics.median(cpu['sampling']):.2f} CPU-s included:")
    for path in SPEED_PATHS:
        print(f"[speed]   {path:17s} {total_cpu[path]:6.2f} CPU-s {total_wall[path]:6.2f} wall-s"
              f"   {reference} / this: {total_cpu[reference] / total_cpu[path]:.2f}x CPU, "
              f"{total_wall[reference] / total_wall[path]:.2f}x wall")
    print(f"[speed] pytorch-maml-rl itself (the issue's figure, not re-run here: its code "
          f"cannot be fetched): {REFERENCE_CPU_SECONDS} CPU-s per batch -> gymlab "
          f"{REFERENCE_CPU_SECONDS / total_cpu['gymlab']:.2f}x in CPU-s; with 2 threads, "
          f"{REFERENCE_CPU_SECONDS / total_wall['gymlab-2-threads']:.2f}x (its CPU-s against "
          f"our wall-s)")


TRAINING_MODES = {"glibc-default": 1, "torch-ops": 1, "gymlab": 1, "gymlab-2-threads": 2}
"""--parts training: the allocator (glibc's own, or gymlab's settings), native.py's sweeps
(torch-ops: GYMLAB_NATIVE=0; both of those on the sweeps' fallback, the torch ops), and
num_workers."""


def training(batches: int) -> None:
    print(f"[training] load before: {load()}", flush=True)
    cpu: dict[str, list[float]] = {mode: [] for mode in TRAINING_MODES}
    wall: dict[str, list[float]] = {mode: [] for mode in TRAINING_MODES}
    for _ in range(2):  # alternate, so that drifts of the machine's speed hit every mode
        for mode in TRAINING_MODES:
            env = dict(os.environ, GYMLAB_NATIVE="0" if mode in ("glibc-default", "torch-ops")
                       else os.environ.get("GYMLAB_NATIVE", "1"))
            out = subprocess.run([sys.executable, __file__, "--training-child", mode,
                                  "--speed-batches", str(batches)],
                                 capture_output=True, text=True, check=True, env=env).stdout
            times = json.loads(out.splitlines()[-1])
            cpu[mode] += times["cpu"]
            wall[mode] += times["wall"]
            print(f"[training] {mode}: CPU-s per batch "
                  + " ".join(f"{t:.2f}" for t in times["cpu"]), flush=True)
    print(f"[training] load after: {load()}")
    default = statistics.median(cpu["glibc-default"])
    for mode in TRAINING_MODES:
        c, w = statistics.median(cpu[mode]), statistics.median(wall[mode])
        print(f"[training] median per batch over {len(cpu[mode])} batches, {mode:16s}: "
              f"{c:5.2f} CPU-s {w:5.2f} wall-s   glibc-default / this {default / c:.2f}x CPU;"
              f" the issue's {REFERENCE_CPU_SECONDS} CPU-s / this: {REFERENCE_CPU_SECONDS / c:.2f}x"
              f" CPU, {REFERENCE_CPU_SECONDS / w:.2f}x its CPU-s over our wall-s")


def training_child(mode: str, batches: int) -> None:
    if mode == "glibc-default":
        trainer.reuse_freed_memory = lambda: False
    agent = MAML(env="Navigation2D-v0", seed=0, output_folder=None, progress=False,
                 num_workers=TRAINING_MODES[mode], **PYTORCH_MAML_RL)
    times: dict[str, list[float]] = {"cpu": [], "wall": []}
    with agent:
        for _ in range(batches):
            scalars, _ = agent.train_batch()
            times["cpu"].append(scalars["time/batch_cpu_seconds"])
            times["wall"].append(scalars["time/batch_seconds"])
    print(json.dumps(times))


def cheetah(batches: int, tasks: int, workers: int, eval_tasks: int, run_dir: str | None
            ) -> None:
    """HalfCheetahDir: meta-train on `tasks` tasks per batch (resuming `run_dir` when it has a
    checkpoint), then the paper's protocol on `eval_tasks` new tasks (0 and 1 step)."""
    print(f"[cheetah] load before: {load()}", flush=True)
    folder = run_dir or f"runs/bench-maml-cheetah-{time.strftime('%H%M%S')}"
    if (Path(folder) / "checkpoints" / "last.pt").exists():
        agent = MAML.resume(folder, progress=False, num_batches=batches, num_workers=workers)
        print(f"[cheetah] resuming {folder} at batch {agent.step}", flush=True)
    else:
        agent = MAML(env="HalfCheetahDir-v0", seed=0, meta_batch_size=tasks, progress=False,
                     num_batches=batches, num_workers=workers, output_folder=folder)
    start = time.perf_counter()
    with agent:
        agent.learn()  # last.pt after every batch: an interrupted run resumes
        for line in (Path(folder) / "progress.jsonl").read_text().splitlines():
            record = json.loads(line)
            if "total_rewards/before_update" in record:
                print(f"[cheetah] batch {record['step']}: before "
                      f"{record['total_rewards/before_update']:8.2f}  after "
                      f"{record['total_rewards/after_update']:8.2f}  "
                      f"({record['time/batch_seconds']:.1f} s)")
        print(f"[cheetah] {agent.step} batches of {agent.config.meta_batch_size} tasks x 20 "
              f"episodes; {time.perf_counter() - start:.0f} s this call; load: {load()}",
              flush=True)
        curve = agent.adaptation_curve(tasks=eval_tasks, grad_steps=1, episodes=20)
    for line in curve.table():
        print(f"[cheetah] {eval_tasks} new tasks, 20 episodes each, {line}")
    print(f"[cheetah] the MAML paper, after its full training: -50.7 before, 293 after one "
          f"step; load after: {load()}")


def workers(batches: int, tasks: int, counts: list[int], ray_address: str | None) -> None:
    """Seconds per HalfCheetahDir meta-batch (tasks x 20 episodes, horizon 200, 2 phases)
    with each number of sampler workers (and on Ray actors with --ray-address), the runs
    alternating batch by batch; all start from seed 0, so their batches are the same."""
    print(f"[workers] load before: {load()}", flush=True)
    setups = {f"{n} worker(s)": {"num_workers": n} for n in counts}
    if ray_address is not None:
        setups[f"ray {ray_address}, {max(counts)} actors"] = {
            "num_workers": max(counts), "ray_address": ray_address}
    agents = {name: MAML(env="HalfCheetahDir-v0", seed=0, meta_batch_size=tasks,
                         progress=False, output_folder=None, **kw) for name, kw in setups.items()}
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "sample": [], "cpu": []}
                                                for name in agents}
    try:
        for agent in agents.values():  # start the workers outside the timed batches
            agent.sampler(tasks, agent.config.fast_batch_size)
        for batch in range(batches):
            for name, agent in agents.items():
                scalars, _ = agent.train_batch()
                times[name]["wall"].append(scalars["time/batch_seconds"])
                times[name]["sample"].append(scalars["time/sample_seconds"])
                times[name]["cpu"].append(scalars["time/batch_cpu_seconds"])
                print(f"[workers] batch {batch + 1}, {name}: {scalars['time/batch_seconds']:.1f} "
                      f"s ({scalars['time/sample_seconds']:.1f} s sampling), after-update "
                      f"return {scalars['total_rewards/after_update']:.3f}; load: {load()}",
                      flush=True)
        thetas = [flat(a.policy.parameters()) for a in agents.values()]
        same = all(torch.equal(thetas[0], t) for t in thetas)
    finally:
        for agent in agents.values():
            agent.close()
    print(f"[workers] load after: {load()}; the runs' parameters are "
          f"{'identical' if same else 'DIFFERENT'}")
    first = statistics.median(times[next(iter(times))]["wall"])
    for name, t in times.items():
        wall = statistics.median(t["wall"])
        print(f"[workers] median over {batches} batches, {name:24s}: {wall:6.1f} s per batch, "
              f"{statistics.median(t['sample']):6.1f} s of it sampling, "
              f"{statistics.median(t['cpu']):6.1f} CPU-s in the main process; "
              f"{first / wall:.2f}x the first row's speed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="paper,speed,cheetah")
    parser.add_argument("--batches", type=int, default=None,
                        help="meta-batches for paper (default: 500 for --config "
                             "pytorch-maml-rl, else 100)")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="paper",
                        help="paper: the MAML authors' 2D-navigation hyperparameters")
    parser.add_argument("--test-lr", default=None, metavar="LR[,LR...]",
                        help="step sizes of the protocol's gradient steps, the last repeated "
                             "(default: the run's default test step sizes, "
                             "MAML.default_test_lr)")
    parser.add_argument("--later-step-tasks", type=int, default=None, metavar="N",
                        help="paper: choose each policy's second test step on N validation "
                             "tasks, 0: later_step_fraction (default: the run's setting)")
    parser.add_argument("--run-dir", default="runs/bench-maml-nav")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default=None, metavar="S[,S...]",
                        help="paper: one run per seed (RUN_DIR-sS), a table per seed and the "
                             "mean over seeds (default: --seed alone, in RUN_DIR)")
    parser.add_argument("--speed-batches", type=int, default=5)
    parser.add_argument("--cheetah-batches", type=int, default=10)
    parser.add_argument("--cheetah-tasks", type=int, default=10)
    parser.add_argument("--cheetah-eval-tasks", type=int, default=40,
                        help="cheetah: new tasks of the adaptation curve (the paper's 40)")
    parser.add_argument("--cheetah-run-dir", default=None,
                        help="cheetah: the run directory (resumed when it has a checkpoint)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-counts", default="1,2", metavar="N[,N...]",
                        help="workers: the numbers of sampler workers to time")
    parser.add_argument("--workers-batches", type=int, default=2)
    parser.add_argument("--workers-tasks", type=int, default=40)
    parser.add_argument("--ray-address", default=None,
                        help="workers: also time Ray actors (local, auto or HOST:PORT)")
    parser.add_argument("--training-child", choices=sorted(TRAINING_MODES),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.training_child:
        training_child(args.training_child, args.speed_batches)
        return
    parts = args.parts.split(",")
    if "speed" in parts:
        speed(args.speed_batches)
    if "training" in parts:
        training(args.speed_batches)
    if "paper" in parts:
        test_lr = [float(x) for x in args.test_lr.split(",")] if args.test_lr else None
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
        testing = {} if args.later_step_tasks is None else {
            "later_step_tasks": args.later_step_tasks}
        paper(args.batches, Path(args.run_dir), seeds, args.config, test_lr, testing)
    if "cheetah" in parts:
        cheetah(args.cheetah_batches, args.cheetah_tasks, args.workers,
                args.cheetah_eval_tasks, args.cheetah_run_dir)
    if "workers" in parts:
        workers(args.workers_batches, args.workers_tasks,
                [int(n) for n in args.worker_counts.split(",")], args.ray_address)


if __name__ == "__main__":
    main()
