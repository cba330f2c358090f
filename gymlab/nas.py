"""`gymlab nas`: search the network-design environment for a good CNN on a dataset.

Four searchers share one budget (candidates) and one record of results: PPO and DQN (with
branching heads) drive `gymlab/NAS-v0` as RL agents; regularized evolution and random
search propose layer lists themselves (ask/tell) and step the same environment, so every
candidate goes through the same cache, training and reward.
"""

from __future__ import annotations

import csv
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from gymlab.core.config import require, to_dict
from gymlab.core.errors import UserError
from gymlab.core.logger import Logger, Progress
from gymlab.core.run import GracefulInterrupt, RunDir, atomic_write_text, seed_everything
from gymlab.envs.nas.env import NASEnv
from gymlab.envs.nas.halving import successive_halving
from gymlab.envs.nas.searchers import RandomSearch, RegularizedEvolution
from gymlab.envs.nas.trainer import CandidateResult, TrainSettings, train_candidate
from gymlab.envs.nas.workers import CandidatePool, usable_workers

Searcher = Literal["evolution", "random", "ppo", "dqn"]

RL_SEARCHER_DEFAULTS: dict[str, dict[str, Any]] = {
    # one env step is one trained network: short rollouts, or PPO's first update would come
    # after thousands of candidates and it would only ever be random search
    "ppo": {"num_steps": 8, "num_minibatches": 2, "update_epochs": 4,
            "learning_rate": 3e-3, "ent_coef": 0.01, "hidden_sizes": (64,), "anneal_lr": False,
            "normalize_reward": True},
    "dqn": {"learning_starts": 20, "batch_size": 16, "train_freq": 1, "gradient_steps": 1,
            "target_update_interval": 10, "exploration_fraction": 0.5,
            "exploration_final_eps": 0.1, "buffer_size": 10_000, "hidden_sizes": (64,)},
}


@dataclass(frozen=True)
class NASConfig:
    """A network search: data, space, searcher, budget."""

    dataset: str = "digits"
    """digits (built in), cifar10 (with --data-dir), or npz (--data-dir FILE.npz)."""
    data_dir: str | None = None
    """Folder of cifar-10-batches-py, or the .npz file."""
    subset: int | None = None
    """Use only this many examples (shuffled with the split seed) (none: all)."""
    space: str = "default"
    """Search space: default, tutorial, or a JSON/YAML file of layer specs."""
    searcher: Searcher = "evolution"
    """Who proposes architectures: evolution (regularized), random, ppo or dqn."""
    budget: int = 100
    """Candidate networks to evaluate (cache hits count)."""
    layers: int = 5
    """Layer ids per architecture."""
    epochs: int = 6
    """Recorded training epochs per candidate (plus one warm-up epoch)."""
    optimizer: Literal["radam", "adam", "sgd"] = "adam"
    """Candidate optimizer (RAdam's warm-up spends most of a 6-epoch budget on small data)."""
    evaluator: Literal["train", "table"] = "train"
    """train candidates, or look them up in an architecture table (fast, known optimum)."""
    table: str = "digits-default-3"
    """With evaluator=table: a shipped table's name or a .npz built by build_table."""
    reward: Literal["improvement", "accuracy"] = "accuracy"
    """Reward of the RL searchers: improvement of the curves, or the best valid accuracy."""
    population: int = 20
    """evolution: population size."""
    sample_size: int = 5
    """evolution: tournament size."""
    round_size: int = 4
    """Candidates proposed together (ppo/dqn: one per environment), then trained in parallel
    and told back. Results depend on it, not on the number of workers."""
    workers: int = 1
    """Candidates trained at once in worker processes or Ray actors (one torch thread each)."""
    ray_address: str | None = None
    """Train candidates on Ray actors: local (start Ray here), auto or HOST:PORT (join a
    cluster) (none: local processes). Needs the tune extra."""
    halving_epochs: int = 0
    """Successive halving: train each round's candidates this many epochs first and only the
    best 1/halving_eta further, up to epochs (0: off). Use a larger round_size with it."""
    halving_eta: int = 3
    """Successive halving: each rung keeps the best 1/halving_eta of its candidates."""
    retrain_best: int = 0
    """Train the winner this many epochs more and report its test accuracy (0: skip)."""
    seed: int = 0
    """Seed of the searcher and of every candidate's training."""
    logdir: str | None = "runs"
    """Parent folder of the search's run directory (none: keep nothing on disk)."""
    progress: bool = True
    """Show a live progress bar (plain periodic lines when not on a terminal)."""

    def __post_init__(self) -> None:
        require(self.budget > 0, f"budget must be positive, got {self.budget}")
        require(self.layers > 0, f"layers must be positive, got {self.layers}")
        require(self.epochs > 0, f"epochs must be positive, got {self.epochs}")
        require(self.population > 1, f"population must be > 1, got {self.population}")
        require(self.sample_size > 0, f"sample_size must be positive, got {self.sample_size}")
        require(self.retrain_best >= 0, f"retrain_best must be >= 0, got {self.retrain_best}")
        require(self.round_size > 0, f"round_size must be positive, got {self.round_size}")
        require(self.workers > 0, f"workers must be positive, got {self.workers}")
        require(self.halving_epochs >= 0,
                f"halving_epochs must be >= 0, got {self.halving_epochs}")
        require(self.halving_epochs < self.epochs or self.halving_epochs == 0,
                f"halving_epochs ({self.halving_epochs}) must be below epochs ({self.epochs})")
        require(self.halving_eta > 1, f"halving_eta must be > 1, got {self.halving_eta}")
        require(self.halving_epochs == 0 or self.searcher in ("evolution", "random"),
                "successive halving ranks a round of candidates: use it with the evolution "
                "or random searcher")


@dataclass
class Candidate:
    index: int
    ids: list[int]
    result: CandidateResult
    cache_hit: bool
    reward: float
    screened: bool = False
    """Stopped by successive halving after a shorter training: not on the leaderboard."""


@dataclass
class SearchResult:
    candidates: list[Candidate] = field(default_factory=list)
    run_dir: Path | None = None
    test_accuracy: float | None = None
    outcome: Literal["completed", "interrupted"] = "completed"

    @property
    def leaderboard(self) -> list[Candidate]:
        """Distinct built and fully trained architectures, best valid accuracy first."""
        best: dict[str, Candidate] = {}
        for c in self.candidates:
            if c.result.ok and not c.screened and c.result.architecture not in best:
                best[c.result.architecture] = c
        return sorted(best.values(), key=lambda c: (-c.result.best_valid_acc, c.result.params))

    @property
    def best(self) -> Candidate | None:
        board = self.leaderboard
        return board[0] if board else None


def resume(run_dir: str | Path) -> SearchResult:
    """Continue an interrupted search. Searches are deterministic for a seed, so it is run
    again from the start: the candidates already trained come from the run's cache.jsonl
    (no training), and the search goes on from where it stopped."""
    run = RunDir.open(run_dir)
    try:
        config = NASConfig(**run.config()["nas"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{run_dir} is not a gymlab nas run ({exc})") from None
    return search(config, run)


def search(config: NASConfig, run: RunDir | None = None) -> SearchResult:
    """Run a search to its budget (or Ctrl-C); write a run directory when `logdir` is set.
    `outcome` on the result says "completed" or "interrupted"."""
    seed_everything(config.seed, 1)
    settings = TrainSettings(epochs=config.epochs, optimizer=config.optimizer, seed=config.seed)
    env_kwargs = {"dataset": config.dataset, "data_dir": config.data_dir,
                  "subset": config.subset, "space": config.space, "layers": config.layers,
                  "epochs": config.epochs, "reward": config.reward,
                  "train": dict(settings.__dict__), "evaluator": config.evaluator,
                  "table": config.table}
    NASEnv(**env_kwargs)  # validates data, space and settings before anything is written
    if config.ray_address is not None and config.evaluator == "train":
        from gymlab.tune.cluster import check_ray_address

        check_ray_address(config.ray_address)
    resuming = run is not None
    if run is None and config.logdir is not None:
        run = RunDir.create(config.logdir, f"nas-{config.searcher}", config.dataset,
                            {"nas": to_dict(config)})
    result = SearchResult()
    if run is not None:
        env_kwargs["cache_file"] = str(run.path / "cache.jsonl")
        result.run_dir = run.path
        print(f"run directory: {run.path}", file=sys.stderr)
    env = NASEnv(**env_kwargs)
    logger = Logger(run, resume_step=0 if resuming else None)
    progress = Progress(config.budget, 0, f"nas {config.searcher}", config.progress, sys.stderr,
                        unit="candidate")
    best_acc = 0.0
    counts = {"hits": 0, "failed": 0}

    def record(ids: list[int], res: CandidateResult, hit: bool, reward: float) -> None:
        nonlocal best_acc
        if len(result.candidates) >= config.budget:
            return
        screened = res.ok and len(res.valid_acc) < env.epochs
        result.candidates.append(Candidate(len(result.candidates), ids, res, hit, reward,
                                           screened))
        if res.ok and not screened:
            best_acc = max(best_acc, res.best_valid_acc)
        n = len(result.candidates)
        logger.log(n, {"candidate/valid_acc": res.best_valid_acc if res.ok else 0.0,
                       "candidate/built": float(res.ok), "candidate/reward": reward,
                       "candidate/train_seconds": 0.0 if hit else res.seconds,
                       "search/best_valid_acc": best_acc})
        counts["hits"] += hit
        counts["failed"] += not res.ok
        progress.set(best=f"{best_acc:.2f}%", **counts)
        progress.update(n)

    start = time.perf_counter()
    with GracefulInterrupt() as interrupt, _pool(config, env) as pool:
        if config.searcher in ("evolution", "random"):
            env.on_candidate = record
            env.reset(seed=config.seed)
            proposer = (RegularizedEvolution(len(env.space), config.layers, config.seed,
                                             config.population, config.sample_size)
                        if config.searcher == "evolution"
                        else RandomSearch(len(env.space), config.layers, config.seed))
            done = 0
            while done < config.budget and not interrupt.requested:
                batch = [proposer.ask() for _ in range(min(config.round_size,
                                                           config.budget - done))]
                if config.halving_epochs:
                    successive_halving(env, batch, pool, config.halving_epochs,
                                       config.halving_eta)
                elif pool.workers > 1:
                    env.prefetch(batch, pool)
                for ids in batch:
                    _, _, _, _, info = env.step(ids)
                    proposer.tell(ids, info["best_valid_acc"] if info["built"] else -1.0)
                done += len(batch)
            if interrupt.requested and done < config.budget:
                result.outcome = "interrupted"
        else:
            from gymlab.agents import algorithm

            agent = algorithm(config.searcher)(
                "gymlab/NAS-v0", env_kwargs=env_kwargs,
                seed=config.seed, eval_every=0, progress=False, log_every=10**9,
                logdir=str(run.path / "agent") if run else None, total_steps=config.budget,
                **rl_searcher_settings(config.searcher, config.round_size))
            # the agent's round_size envs share one cache, and each vector step trains their
            # candidates at once on the pool's workers
            envs = [e.unwrapped for e in agent.envs.envs]
            for e in envs:
                e.share_cache(envs[0])
                e.on_candidate = record
            if pool.workers > 1:
                agent.envs.before_step = lambda actions: envs[0].prefetch(list(actions), pool)
            if agent.learn().outcome == "interrupted":
                result.outcome = "interrupted"
    progress.close()
    logger.close()
    elapsed = time.perf_counter() - start
    best = result.best
    print(f"{len(result.candidates)} candidates in {elapsed:.1f}s, {counts['hits']} cache hits, "
          f"{counts['failed']} not built; best valid accuracy "
          f"{best.result.best_valid_acc:.2f}%: {best.result.architecture}" if best else
          "no candidate could be built", file=sys.stderr)
    if (best is not None and config.retrain_best > 0 and result.outcome == "completed"
            and env.data is not None):
        longer = TrainSettings(**{**settings.__dict__, "epochs": config.retrain_best})
        final = train_candidate(best.ids, env.space, env.data, longer, keep_model=True)
        result.test_accuracy = _test_accuracy(final.model, env)
        print(f"retrained {config.retrain_best} epochs: valid {final.best_valid_acc:.2f}%, "
              f"test {result.test_accuracy:.2f}%", file=sys.stderr)
    if run is not None:
        _write_outputs(run.path, result, env, settings)
        if result.outcome == "interrupted":
            print(f"interrupted after {len(result.candidates)} candidates; resume with: "
                  f"gymlab nas --resume {shlex.quote(str(run.path))}", file=sys.stderr)
    return result


def rl_searcher_settings(searcher: str, round_size: int) -> dict[str, Any]:
    """The RL searcher's config: RL_SEARCHER_DEFAULTS with one env per candidate of a round,
    and as many updates per trained network whatever the round size."""
    settings = {**RL_SEARCHER_DEFAULTS[searcher], "num_envs": round_size}
    if searcher == "ppo":  # an update every 8 networks (at least one round)
        settings["num_steps"] = max(1, settings["num_steps"] // round_size)
    else:  # one gradient step per network
        settings["gradient_steps"] = round_size * settings.get("gradient_steps", 1)
    return settings


def _pool(config: NASConfig, env: NASEnv) -> CandidatePool:
    if env.table is not None:  # lookups: nothing to run in parallel
        return CandidatePool(1, env.space, env.data, env.settings)
    workers = config.workers if config.ray_address else usable_workers(config.workers)
    return CandidatePool(workers, env.space, env.data, env.settings, config.ray_address)


def print_leaderboard(result: SearchResult, top: int = 10) -> None:
    for rank, c in enumerate(result.leaderboard[:top], 1):
        print(f"{rank:>3}. {c.result.best_valid_acc:6.2f}%  {c.result.params:>7} params  "
              f"{c.result.seconds:5.2f}s  {c.result.architecture}")


def _test_accuracy(model: torch.nn.Module, env: NASEnv) -> float:
    data = env.data
    if len(data.x_test) == 0:
        return float("nan")
    with torch.no_grad():
        predictions = model.eval()(data.x_test).argmax(1)
    return float((predictions == data.y_test).float().mean()) * 100.0


def _write_outputs(path: Path, result: SearchResult, env: NASEnv,
                   settings: TrainSettings) -> None:
    with open(path / "leaderboard.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "architecture", "layer_ids", "valid_acc", "params", "flops",
                         "train_seconds", "first_seen"])
        for rank, c in enumerate(result.leaderboard, 1):
            writer.writerow([rank, c.result.architecture, " ".join(map(str, c.ids)),
                             f"{c.result.best_valid_acc:.2f}", c.result.params, c.result.flops,
                             f"{c.result.seconds:.3f}", c.index + 1])
    best = result.best
    if best is not None and env.data is not None:  # a table has curves, not networks
        spec = {"architecture": best.result.architecture, "layer_ids": best.ids,
                "layers": [env.space.choices[i].name for i in best.ids],
                "space": env.space.to_json(), "input_shape": list(env.data.input_shape),
                "num_classes": env.data.num_classes, "valid_acc": best.result.best_valid_acc,
                "test_acc": result.test_accuracy, "train": settings.__dict__}
        atomic_write_text(path / "best_network.json", json.dumps(spec, indent=2) + "\n")
        # training is deterministic for a seed: this is the network the search scored
        model = train_candidate(best.ids, env.space, env.data, settings, keep_model=True).model
        torch.save(model.state_dict(), path / "best_network.pt")  # type: ignore[union-attr]
    from gymlab.envs.nas.report import draw_report

    draw_report(result, path / "report.png")
    print(f"wrote {path / 'leaderboard.csv'}, best_network.json/.pt, report.png",
          file=sys.stderr)
