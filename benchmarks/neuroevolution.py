"""Neuroevolution benchmark (issue 5): gymlab's batched GA/ES against the loops users write.

1. tutorial: the tutorial's exact GA (64 networks (4, 16, 2), 15 episodes each, CartPole with
   a 10,000-step limit, 5 generations, elitism 1, N(0, 0.1^2) mutation) run by gymlab (one
   process, then --workers 2) and by a faithful seed-style loop: one gymnasium env.step and one
   numpy forward per step, the same GeneticAlgorithm object and the same generators, so both
   run the identical search (their best-fitness trajectories are checked equal) and only the
   evaluation differs. Env steps per second and wall seconds per run.
   workers: the same gymlab runs only, 1 and 2 workers alternating, --repeats times per seed:
   the speed-up of the second worker (needs an idle second core to mean anything).
2. solve: time to solve CartPole-v1 (the first evaluation of the search's best (GA) or mean
   (ES) network on 10 fixed episodes with mean >= 475) for gymlab's ga and es defaults,
   EvoTorch's PGPE with its CartPole notebook's settings, and pycma's CMA-ES driving a numpy
   policy loop. Every library is evaluated by gymlab's Evaluator on the same episodes; runs
   alternate per seed so load changes hit all alike. Ratio of median wall seconds.
3. throughput: gymlab's batched evaluation against the raw vectorised environment.

    pip install -c constraints.txt evotorch cma     # peers, only for this script
    python benchmarks/neuroevolution.py [--parts tutorial,workers,solve,throughput] [--seeds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from gymlab import ES, GA
from gymlab.agents.evolution import compiled
from gymlab.agents.evolution.ga import GAConfig, GeneticAlgorithm
from gymlab.agents.evolution.policy import ActionHead, MLPSpec, PopulationPolicy
from gymlab.agents.evolution.rollout import evaluate_population, run_episodes
from gymlab.agents.evolution.vector_envs import CartPoleBatch
from gymlab.core.evaluation import Evaluator

TUTORIAL = {"population": 64, "generations": 5, "episodes": 15, "mutation_scale": 0.1,
            "max_episode_steps": 10_000}
EVAL_SEED = 1_000_000  # the session's evaluation episodes: seed + 1,000,000 + i
SOLVE = 475.0


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def numpy_mlp(params: np.ndarray, spec: MLPSpec) -> Callable[[np.ndarray], int]:
    """The tutorial's forward pass: obs @ W1 + b1, ReLU, @ W2 + b2, argmax."""
    (w1, b1), (w2, b2) = [(w[0], b[0, 0]) for w, b in spec.unflatten(params[None])]

    def act(obs: np.ndarray) -> int:
        hidden = np.maximum(obs @ w1 + b1, 0)
        return int(np.argmax(hidden @ w2 + b2))

    return act


def seed_style_episode(env: gym.Env, act: Callable[[np.ndarray], int], seed: int) -> int:
    obs, _ = env.reset(seed=seed)
    steps, done = 0, False
    while not done:
        obs, _, terminated, truncated, _ = env.step(act(obs))
        steps += 1
        done = terminated or truncated
    return steps


# -- 1. the tutorial's configuration ------------------------------------------------------------
def run_gymlab_tutorial(seed: int, workers: int) -> dict:
    agent = GA("CartPole-v1", seed=seed, logdir=None, progress=False, eval_every=0,
               workers=workers, **TUTORIAL)
    best: list[float] = []
    tell = agent.strategy.tell
    agent.strategy.tell = lambda f: (best.append(float(f.max())), tell(f))[1]  # type: ignore
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stderr(io.StringIO()):
        agent.learn()
    return {"steps": agent.step, "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu, "best": best}


def run_seed_style_tutorial(seed: int) -> dict:
    """The same GA and generators as gymlab's GA agent, evaluated one step at a time."""
    cfg = GAConfig(**{k: v for k, v in TUTORIAL.items() if k != "max_episode_steps"})
    spec = MLPSpec((4, 16, 2), "relu")
    wall, cpu = time.perf_counter(), time.process_time()
    strategy = GeneticAlgorithm(cfg, spec, np.random.default_rng(seed))
    episode_rng = np.random.default_rng(seed + 1)
    env = gym.make("CartPole-v1", max_episode_steps=TUTORIAL["max_episode_steps"])
    steps, best = 0, []
    for _ in range(cfg.generations):
        population = strategy.ask()
        seeds = episode_rng.integers(2**31 - 1, size=cfg.episodes)
        lengths = np.array([[seed_style_episode(env, numpy_mlp(p, spec), int(s)) for s in seeds]
                            for p in population])
        fitness = lengths.mean(1)  # CartPole: return = length
        steps += int(lengths.sum())
        best.append(float(fitness.max()))
        strategy.tell(fitness)
    return {"steps": steps, "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu, "best": best}


def warm_up() -> None:
    """Load the compiled kernel (the cached C build, or numba's import and cache; either may
    compile first) once, so that the first timed run does not carry it; a CLI run pays it
    once per process."""
    start = time.perf_counter()
    spec = MLPSpec((4, 16, 2), "relu")
    compiled.evaluate_cartpole(CartPoleBatch(10), spec, np.zeros((1, spec.n_params)),
                               np.arange(1))
    print(f"compiled kernel loaded in {time.perf_counter() - start:.2f} s (once per process)")


def workers(seeds: list[int], repeats: int) -> None:
    print(f"## 1b. The tutorial's GA, 1 vs 2 workers, {len(seeds)} seeds x {repeats}   "
          f"load: {load()}")
    warm_up()
    print("seed | steps | 1 worker wall s (median) | 2 workers wall s (median) | speed-up")
    walls: dict[int, list[float]] = {1: [], 2: []}
    for seed in seeds:
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for _ in range(repeats):
            for w in (1, 2):
                runs[w].append(run_gymlab_tutorial(seed, w))
        assert all(r["best"] == runs[1][0]["best"] for w in (1, 2) for r in runs[w])
        med = {w: statistics.median(r["wall"] for r in runs[w]) for w in (1, 2)}
        for w in (1, 2):
            walls[w].append(med[w])
        print(f"{seed} | {runs[1][0]['steps']:,} | {med[1]:.3f} | {med[2]:.3f} | "
              f"{med[1] / med[2]:.2f}x", flush=True)
    print(f"all seeds: {sum(walls[1]):.2f} s with 1 worker, {sum(walls[2]):.2f} s with 2: "
          f"{sum(walls[1]) / sum(walls[2]):.2f}x from the second worker (median per-seed ratio "
          f"{statistics.median(a / b for a, b in zip(walls[1], walls[2])):.2f}x)   "
          f"load: {load()}\n")


def tutorial(seeds: list[int]) -> None:
    print(f"## 1. The tutorial's GA, {len(seeds)} seeds   load: {load()}")
    warm_up()
    print("seed | gymlab steps/s (wall s) | 2 workers steps/s (wall s) | seed-style steps/s "
          "(wall s) | ratio 1 core | ratio 2 workers | best fitness per generation")
    rows = []
    for seed in seeds:
        ours, two, loop = (run_gymlab_tutorial(seed, 1), run_gymlab_tutorial(seed, 2),
                           run_seed_style_tutorial(seed))
        assert ours["best"] == loop["best"] == two["best"], (ours["best"], loop["best"])
        assert ours["steps"] == loop["steps"] == two["steps"]
        rate = {k: r["steps"] / r["wall"] for k, r in (("ours", ours), ("two", two),
                                                       ("loop", loop))}
        rows.append((ours, two, loop))
        print(f"{seed} | {rate['ours']:,.0f} ({ours['wall']:.2f}) | {rate['two']:,.0f} "
              f"({two['wall']:.2f}) | {rate['loop']:,.0f} ({loop['wall']:.1f}) | "
              f"{rate['ours'] / rate['loop']:.1f}x | {rate['two'] / rate['loop']:.1f}x | "
              f"{', '.join(f'{b:.0f}' for b in ours['best'])}", flush=True)
    total = {k: sum(r[i]["steps"] for r in rows) / sum(r[i]["wall"] for r in rows)
             for i, k in enumerate(("ours", "two", "loop"))}
    medians = [statistics.median(r[i]["wall"] for r in rows) for i in range(3)]
    print(f"all seeds: gymlab {total['ours']:,.0f} steps/s, 2 workers {total['two']:,.0f}, "
          f"seed-style {total['loop']:,.0f}: {total['ours'] / total['loop']:.1f}x on one core, "
          f"{total['two'] / total['loop']:.1f}x with 2 workers ({total['two'] / total['ours']:.2f}"
          f"x from the second worker); median wall per run {medians[0]:.2f} s / {medians[1]:.2f}"
          f" s / {medians[2]:.1f} s   load: {load()}\n")


# -- 2. time to solve CartPole-v1 ---------------------------------------------------------------
def solve_gymlab(cls: type, seed: int) -> tuple[int | None, int]:
    agent = cls("CartPole-v1", seed=seed, logdir=None, progress=False, stop_reward=SOLVE,
                generations=300)
    with contextlib.redirect_stderr(io.StringIO()):
        agent.learn()
    return (agent.step if agent.outcome == "solved" else None), agent.generation


def solve_evotorch(seed: int) -> tuple[int | None, int]:
    """EvoTorch's functional-API CartPole notebook's PGPE settings, through its PGPE class,
    in this process (num_actors: none) like the other contenders."""
    import torch
    from evotorch.algorithms import PGPE
    from evotorch.neuroevolution import GymNE

    torch.manual_seed(seed)
    problem = GymNE("CartPole-v1", "Linear(obs_length, 16) >> Tanh() >> Linear(16, act_length)",
                    observation_normalization=True)
    max_speed = 0.15
    searcher = PGPE(problem, popsize=100, center_learning_rate=max_speed * 0.75,
                    stdev_learning_rate=0.1, radius_init=max_speed * 15, stdev_max_change=0.2,
                    ranking_method="centered", optimizer="clipup",
                    optimizer_config={"max_speed": max_speed}, symmetric=True)
    evaluator = Evaluator("CartPole-v1", 10, seed + EVAL_SEED)
    for generation in range(1, 151):
        searcher.step()
        policy = problem.to_policy(searcher.status["center"])
        with torch.no_grad():
            mean = evaluator(lambda obs, p=policy: p(torch.as_tensor(obs)).argmax(-1).numpy()).mean
        if mean >= SOLVE:
            return problem.interaction_count, generation
    return None, 150


def solve_pycma(seed: int) -> tuple[int | None, int]:
    """pycma's CMA-ES (default population) on the same (4, 16, 2) network, each candidate
    scored on one episode by a seed-style loop; the mean evaluated after every generation."""
    import cma

    spec = MLPSpec((4, 16, 2), "relu")
    es = cma.CMAEvolutionStrategy(np.zeros(spec.n_params), 0.5,
                                  {"seed": seed + 1, "verbose": -9})
    env = gym.make("CartPole-v1")
    evaluator = Evaluator("CartPole-v1", 10, seed + EVAL_SEED)
    rng = np.random.default_rng(seed)
    steps = 0
    for generation in range(1, 301):
        candidates = es.ask()
        episode_seed = int(rng.integers(2**31 - 1))
        lengths = [seed_style_episode(env, numpy_mlp(np.asarray(x), spec), episode_seed)
                   for x in candidates]
        steps += sum(lengths)
        es.tell(candidates, [-float(n) for n in lengths])
        act = numpy_mlp(np.asarray(es.mean), spec)
        if evaluator(lambda obs, a=act: np.array([a(o) for o in obs])).mean >= SOLVE:
            return steps, generation
    return None, 300


def solve(seeds: list[int]) -> None:
    contenders: dict[str, Callable[[int], tuple[int | None, int]]] = {
        "gymlab es": lambda s: solve_gymlab(ES, s), "gymlab ga": lambda s: solve_gymlab(GA, s),
        "EvoTorch PGPE": solve_evotorch, "pycma CMA-ES loop": solve_pycma}
    results: dict[str, list[tuple[int | None, int, float, float]]] = {k: [] for k in contenders}
    print(f"## 2. Time to solve CartPole-v1, {len(seeds)} seeds   load: {load()}")
    for seed in seeds:
        for name, run in contenders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            steps, generations = run(seed)
            results[name].append((steps, generations, time.perf_counter() - wall,
                                  time.process_time() - cpu))
            print(f"  seed {seed} {name}: {'solved' if steps else 'NOT solved'} at "
                  f"{steps or 0:,} steps, generation {generations}, "
                  f"{results[name][-1][2]:.2f} s wall, {results[name][-1][3]:.2f} CPU-s",
                  flush=True)
    print("library | solved | median steps | median generations | median wall s | "
          "median CPU-s")
    median_wall = {}
    for name, rows in results.items():
        solved = [r for r in rows if r[0] is not None]
        median_wall[name] = statistics.median(r[2] for r in rows)
        steps = statistics.median(r[0] for r in solved) if solved else float("nan")
        print(f"{name} | {len(solved)}/{len(rows)} | {steps:,.0f} | "
              f"{statistics.median(r[1] for r in rows):.0f} | {median_wall[name]:.2f} | "
              f"{statistics.median(r[3] for r in rows):.2f}")
    for ours in ("gymlab es", "gymlab ga"):
        print(f"{ours}: {median_wall['EvoTorch PGPE'] / median_wall[ours]:.1f}x faster than "
              f"EvoTorch PGPE, {median_wall['pycma CMA-ES loop'] / median_wall[ours]:.1f}x than "
              f"the pycma loop (ratio of median wall seconds; unsolved runs count their time)")
    print(f"load: {load()}\n")


# -- 3. throughput --------------------------------------------------------------------------------
def throughput() -> None:
    print(f"## 3. Batched evaluation vs the raw vectorised environment   load: {load()}")
    n, t = 960, 500  # the tutorial's 64 x 15 slots
    vec = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    vec.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(t, n))
    start = time.perf_counter()
    for a in actions:
        vec.step(a)
    raw = n * t / (time.perf_counter() - start)
    batch = CartPoleBatch(t)
    batch.reset(np.arange(n))
    start = time.perf_counter()
    for a in actions:
        batch.step(a)
    ours_env = n * t / (time.perf_counter() - start)
    # 64 networks that balance (a linear controller inside the MLP, slightly perturbed): all
    # 960 episodes run the full 500 steps, so this is the batched regime without the tail
    spec, rng = MLPSpec((4, 16, 2), "relu"), np.random.default_rng(0)
    params = np.zeros((64, spec.n_params))
    for p in params:
        w = np.array([0.1, 0.5, 1.0, 1.0]) + 0.05 * rng.normal(size=4)
        p[:64].reshape(4, 16)[:, 0], p[:64].reshape(4, 16)[:, 1] = w, -w
        p[80:112].reshape(16, 2)[0, 1], p[80:112].reshape(16, 2)[1, 1] = 1.0, -1.0
    head, seeds = ActionHead("discrete", 2), np.arange(15)
    warm_up()
    start = time.perf_counter()
    result = evaluate_population(CartPoleBatch(t), spec, head, params, seeds)
    evaluated = result.steps / (time.perf_counter() - start)
    individual = np.repeat(np.arange(64), 15)  # the same slots in numpy lockstep
    start = time.perf_counter()
    episodes = run_episodes(CartPoleBatch(t), np.tile(seeds, 64),
                            PopulationPolicy(spec, head, params, individual))
    lockstep = episodes.lengths.sum() / (time.perf_counter() - start)
    assert np.array_equal(episodes.lengths.reshape(64, 15), result.lengths)
    env = gym.make("CartPole-v1")
    act = numpy_mlp(params[0], spec)
    start = time.perf_counter()
    loop_steps = sum(seed_style_episode(env, act, s) for s in range(10))
    loop = loop_steps / (time.perf_counter() - start)
    print(f"960 slots x {t} steps: gymnasium CartPoleVectorEnv (random actions, no policy) "
          f"{raw / 1e6:.2f} M steps/s; gymlab CartPoleBatch alone {ours_env / 1e6:.2f} M/s; "
          f"gymlab population evaluation (policy forward + env; compiled kernel, one thread) "
          f"{evaluated / 1e6:.2f} M/s = {evaluated / raw:.0%} of the raw vector env; the same "
          f"in numpy lockstep {lockstep / 1e6:.2f} M/s; seed-style loop "
          f"{loop / 1e3:.0f} k steps/s ({1e6 / loop:.1f} µs per step)   load: {load()}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="throughput,solve,tutorial,workers")
    parser.add_argument("--seeds", type=int, default=10, help="tutorial seeds (solve: 5)")
    parser.add_argument("--solve-seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="workers: runs per seed")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    parts = args.parts.split(",")
    if "throughput" in parts:
        throughput()
    if "solve" in parts:
        solve(list(range(args.solve_seeds)))
    if "tutorial" in parts:
        tutorial(list(range(args.seeds)))
    if "workers" in parts:
        workers(list(range(args.seeds)), args.repeats)


if __name__ == "__main__":
    main()
