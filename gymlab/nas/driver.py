"""`gymlab nas`: search the network-design environment for a good CNN on a dataset.

Four searchers share one budget (candidates) and one evaluator: PPO and DQN (with branching
heads) drive `gymlab/NAS-v0` as RL agents; regularized evolution and random search propose
layer lists themselves (ask/tell) and step the same environment, so every candidate goes
through the same cache, training and reward.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from gymlab.core.config import to_dict
from gymlab.core.errors import UserError
from gymlab.core.logger import Logger, Progress
from gymlab.core.ray import check_ray_address
from gymlab.core.run import GracefulInterrupt, RunDir, seed_everything
from gymlab.nas.config import NASConfig
from gymlab.nas.datasets import Dataset
from gymlab.nas.env import NASEnv
from gymlab.nas.evaluator import Evaluator
from gymlab.nas.results import Candidate, SearchResult
from gymlab.nas.searchers import RandomSearch, RegularizedEvolution
from gymlab.nas.trainer import CandidateResult, TrainSettings, train_candidate

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


def env_kwargs(config: NASConfig) -> dict[str, Any]:
    """gym.make's keyword arguments for the search's `gymlab/NAS-v0` (JSON values)."""
    settings = TrainSettings(epochs=config.epochs, optimizer=config.optimizer, seed=config.seed)
    return {"dataset": config.dataset, "data_dir": config.data_dir, "subset": config.subset,
            "space": config.space, "layers": config.layers, "epochs": config.epochs,
            "reward": config.reward, "train": dict(settings.__dict__),
            "evaluator": config.evaluator, "table": config.table}


def build_evaluator(config: NASConfig) -> Evaluator:
    """The search's evaluator; it checks the data, space, table and Ray address before
    anything is written."""
    kwargs = env_kwargs(config)
    evaluator = Evaluator.from_settings(
        **{k: kwargs[k] for k in ("dataset", "data_dir", "subset", "space", "layers", "epochs",
                                  "train", "evaluator", "table")},
        workers=config.workers, ray_address=config.ray_address,
        halving_epochs=config.halving_epochs, halving_eta=config.halving_eta)
    if config.ray_address is not None and evaluator.table is None:
        check_ray_address(config.ray_address)
    return evaluator


def search(config: NASConfig, run: RunDir | None = None) -> SearchResult:
    """Run a search to its budget (or Ctrl-C); write a run directory when `logdir` is set.
    `outcome` on the result says "completed" or "interrupted"."""
    seed_everything(config.seed, 1)
    evaluator = build_evaluator(config)
    resuming = run is not None
    if run is None and config.logdir is not None:
        run = RunDir.create(config.logdir, f"nas-{config.searcher}", config.dataset,
                            {"nas": to_dict(config)})
    result = SearchResult()
    if run is not None:
        evaluator.keep_results_in(run.path / "cache.jsonl")
        result.run_dir = run.path
        print(f"run directory: {run.path}", file=sys.stderr)
    logger = Logger(run, resume_step=0 if resuming else None)
    progress = Progress(config.budget, 0, f"nas {config.searcher}", config.progress, sys.stderr,
                        unit="candidate")
    best_acc = 0.0
    counts = {"hits": 0, "failed": 0}

    def record(ids: list[int], res: CandidateResult, hit: bool, reward: float) -> None:
        nonlocal best_acc
        if len(result.candidates) >= config.budget:
            return
        screened = res.ok and len(res.valid_acc) < evaluator.epochs
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

    evaluator.on_result = record
    start = time.perf_counter()
    with GracefulInterrupt() as interrupt, evaluator:
        if config.searcher in ("evolution", "random"):
            done = _propose_and_step(config, evaluator, interrupt)
            if interrupt.requested and done < config.budget:
                result.outcome = "interrupted"
        elif _drive_rl_agent(config, evaluator, run) == "interrupted":
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
            and evaluator.data is not None):
        longer = dataclasses.replace(evaluator.settings, epochs=config.retrain_best)
        final = train_candidate(best.ids, evaluator.space, evaluator.data, longer,
                                keep_model=True)
        result.test_accuracy = test_accuracy(final.model, evaluator.data)
        print(f"retrained {config.retrain_best} epochs: valid {final.best_valid_acc:.2f}%, "
              f"test {result.test_accuracy:.2f}%", file=sys.stderr)
    if run is not None:
        from gymlab.nas.report import write_outputs

        write_outputs(run.path, result, evaluator)
        if result.outcome == "interrupted":
            print(f"interrupted after {len(result.candidates)} candidates; resume with: "
                  f"gymlab nas --resume {shlex.quote(str(run.path))}", file=sys.stderr)
    return result


def _propose_and_step(config: NASConfig, evaluator: Evaluator,
                      interrupt: GracefulInterrupt) -> int:
    """Evolution or random search: ask a round, prepare it on the evaluator, step the env
    with each network, tell the fitness back. Returns the candidates stepped."""
    env = NASEnv(evaluator=evaluator, layers=config.layers, reward=config.reward)
    env.reset(seed=config.seed)
    proposer = (RegularizedEvolution(len(env.space), config.layers, config.seed,
                                     config.population, config.sample_size)
                if config.searcher == "evolution"
                else RandomSearch(len(env.space), config.layers, config.seed))
    done = 0
    while done < config.budget and not interrupt.requested:
        batch = [proposer.ask() for _ in range(min(config.round_size, config.budget - done))]
        evaluator.prepare_round(batch)
        for ids in batch:
            _, _, _, _, info = env.step(ids)
            proposer.tell(ids, info["best_valid_acc"] if info["built"] else -1.0)
        done += len(batch)
    return done


def _drive_rl_agent(config: NASConfig, evaluator: Evaluator, run: RunDir | None) -> str:
    """PPO or DQN on `gymlab/NAS-v0`, one env per candidate of a round, all sharing the
    evaluator; each vector step's candidates are prepared (trained in parallel) together.
    Returns the agent's outcome."""
    if config.searcher == "ppo":
        from gymlab.agents.ppo import PPO as Agent
    else:
        from gymlab.agents.dqn import DQN as Agent

    agent = Agent(
        "gymlab/NAS-v0", env_kwargs=env_kwargs(config),
        seed=config.seed, eval_every=0, progress=False, log_every=10**9,
        logdir=str(run.path / "agent") if run else None, total_steps=config.budget,
        **rl_searcher_settings(config.searcher, config.round_size))
    for env in agent.envs.envs:
        env.unwrapped.share(evaluator)
    agent.envs.before_step = lambda actions: evaluator.prepare_round(list(actions))
    return agent.learn().outcome


def rl_searcher_settings(searcher: str, round_size: int) -> dict[str, Any]:
    """The RL searcher's config: RL_SEARCHER_DEFAULTS with one env per candidate of a round,
    and as many updates per trained network whatever the round size."""
    settings = {**RL_SEARCHER_DEFAULTS[searcher], "num_envs": round_size}
    if searcher == "ppo":  # an update every 8 networks (at least one round)
        settings["num_steps"] = max(1, settings["num_steps"] // round_size)
    else:  # one gradient step per network
        settings["gradient_steps"] = round_size * settings.get("gradient_steps", 1)
    return settings


def test_accuracy(model: Any, data: Dataset) -> float:
    """Accuracy in % of `model` on the test split (NaN when the split is empty)."""
    import torch

    if len(data.x_test) == 0:
        return float("nan")
    with torch.no_grad():
        predictions = model.eval()(data.x_test).argmax(1)
    return float((predictions == data.y_test).float().mean()) * 100.0
