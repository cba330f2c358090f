"""`gymlab nas` / `gymlab train nas`: search the network-design environment for a good CNN.

Four searchers share one budget (candidates) and one evaluator: PPO and DQN (with branching
heads) drive `gymlab/NAS-v0` as RL agents (PPO with edit actions on the best networks so
far, DQN proposing layer ids); regularized evolution and random search propose
layer lists themselves (ask/tell) and step the same environment, so every candidate goes
through the same cache, training and reward. The search scores itself: after each candidate
the best valid accuracy so far is the run's score (best.pt, stop_reward, tune, plot).
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gymlab.core.algorithm import Algorithm
from gymlab.core.config import build
from gymlab.core.errors import UserError
from gymlab.core.evaluation import EvalResult
from gymlab.core.ray import check_ray_address
from gymlab.core.run import RunConfig, RunDir
from gymlab.core.seeding import seed_everything
from gymlab.core.session import Session
from gymlab.nas.config import NASConfig
from gymlab.nas.datasets import Dataset
from gymlab.nas.env import NASEnv
from gymlab.nas.evaluator import Evaluator
from gymlab.nas.objective import Objective
from gymlab.nas.report import leaderboard_line, write_outputs
from gymlab.nas.results import Candidate, SearchResult
from gymlab.nas.searchers import RandomSearch, RegularizedEvolution
from gymlab.nas.trainer import CandidateResult, TrainSettings, train_candidate

ENV_ID = "gymlab/NAS-v0"

RL_SEARCHER_DEFAULTS: dict[str, dict[str, Any]] = {
    # one env step is one trained network: short rollouts, or PPO's first update would come
    # after thousands of candidates and it would only ever be random search. gamma 0: a
    # network's reward does not depend on the networks proposed after it, so discounted
    # later rewards only add noise to its value
    "ppo": {"num_steps": 8, "num_minibatches": 2, "update_epochs": 4,
            "learning_rate": 3e-3, "ent_coef": 0.01, "hidden_sizes": (64,), "anneal_lr": False,
            "normalize_reward": True, "gamma": 0.0},
    "dqn": {"learning_starts": 20, "batch_size": 16, "train_freq": 1, "gradient_steps": 1,
            "target_update_interval": 10, "exploration_fraction": 0.5,
            "exploration_final_eps": 0.1, "buffer_size": 10_000, "hidden_sizes": (64,),
            "gamma": 0.0},
}
"""Chosen by leave-one-table-out (benchmarks/nas_search.py --part tables)."""

RL_ENV_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {"mutate_repeats": True, "edit_elites": 5},
    "dqn": {"mutate_repeats": True},
}
"""Per RL searcher, its environment settings, merged under the run's env_kwargs (which may
change them) and recorded with them: an agent that keeps proposing its best network gets a
new neighbour of it scored instead of a cache hit; PPO edits one of the best networks so far
(gymlab.nas.elites)."""

EVOLUTION_DEFAULTS: dict[str, Any] = {"distinct": True}
"""RegularizedEvolution's settings besides population and sample size: no repeated
proposals (a repeat spends budget and teaches nothing)."""

LEADERBOARD_KEPT = 10
"""Leaderboard rows a checkpoint keeps (what `gymlab eval` prints)."""


class NASSearch(Algorithm):
    """A network search. `NASSearch(searcher="evolution", budget=100).learn().result`."""

    algo = "nas"
    Config = NASConfig
    default_env = ENV_ID
    unit = "candidate"
    score_name = "best_valid_acc"
    scores_itself = True
    RUN_DEFAULTS = {"total_steps": 10**15, "eval_every": 0, "log_every": 1}
    """The budget is `budget` (total_steps, in candidates, only cuts it shorter); every
    candidate is scored, so there is no periodic evaluation."""
    RESUMABLE = Algorithm.RESUMABLE | {"budget", "workers", "ray_address"}
    """How long it goes on, how it reports, where candidates train: never how it searches."""

    config: NASConfig

    # -- setup ----------------------------------------------------------------------------
    def _build(self) -> None:
        if self.run_config.env.removeprefix("gymlab/") != ENV_ID.removeprefix("gymlab/"):
            raise UserError(f"nas searches {ENV_ID}, not {self.run_config.env}")
        self.evaluator = build_evaluator(self.config, self.run_config.seed)
        # the RL searcher's env settings go into the run's env_kwargs, so config.json records
        # them and a resumed search keeps the design it started with
        self.run_config = dataclasses.replace(self.run_config, env_kwargs={
            **RL_ENV_DEFAULTS.get(self.config.searcher, {}), **self.run_config.env_kwargs})
        self.env_kwargs()  # a clash with the config's settings fails here, before any file
        self.objective = Objective.from_config(self.config)
        """What the search maximises: told to evolution, the RL reward, the best network."""
        self.result = SearchResult(objective=self.objective)
        self.board: list[dict[str, Any]] = []
        """The leaderboard a loaded checkpoint holds."""

    def env_kwargs(self) -> dict[str, Any]:
        """gym.make's keyword arguments for the search's environment (JSON values): the
        config's, and the run's env_kwargs (memory, metrics, reward_factors, ...)."""
        own = env_settings(self.config, self.run_config.seed)
        clash = sorted(set(own) & set(self.run_config.env_kwargs))
        if clash:
            raise UserError(f"env_kwargs {', '.join(clash)}: set them as nas options instead")
        known = set(inspect.signature(NASEnv.__init__).parameters) - {
            "self", "evaluator", "cache_file", "render_mode"}  # the search sets these itself
        unknown = sorted(set(self.run_config.env_kwargs) - known)
        if unknown:
            raise UserError(f"env_kwargs {', '.join(unknown)}: not an argument of {ENV_ID} "
                            f"(those are {', '.join(sorted(known - set(own)))})")
        return {**own, **self.run_config.env_kwargs}

    def progress_total(self) -> int:
        return min(self.config.budget, self.run_config.total_steps)

    def run_name(self) -> str:
        # on a table, the table's data set is the one searched
        return f"nas-{self.config.searcher}-{self.evaluator.dataset_name}"

    def _on_start(self) -> None:
        if self.run is not None:
            self.evaluator.keep_results_in(self.run.path / "cache.jsonl")

    # -- the search -----------------------------------------------------------------------
    def _learn(self, session: Session) -> None:
        # A search is deterministic for its seed, so a resumed one runs again from the
        # start: the candidates already trained come from cache.jsonl.
        seed_everything(self.run_config.seed, self.run_config.torch_threads)
        self.step = 0
        self.result = SearchResult(run_dir=self.run.path if self.run else None,
                                   objective=self.objective)
        self.best_acc, self.counts = 0.0, {"hits": 0, "failed": 0}
        self.started = time.perf_counter()
        self.evaluator.on_result = lambda *answer: self._record(session, *answer)
        try:
            if self.config.searcher in ("evolution", "random"):
                self._propose_and_step(session)
            else:
                self._drive_rl_agent(session)
        finally:
            self.evaluator.on_result = None
            self.evaluator.close()

    def _propose_and_step(self, session: Session) -> None:
        """Evolution or random search: ask a round, prepare it on the evaluator (in parallel,
        or screened by halving), step the env with each network, tell the fitness back."""
        cfg = self.config
        env = NASEnv(evaluator=self.evaluator, layers=cfg.layers, reward=cfg.reward,
                     objective=env_settings(cfg, self.run_config.seed)["objective"],
                     **self.run_config.env_kwargs)
        env.reset(seed=self.run_config.seed)
        proposer = (RegularizedEvolution(len(env.space), cfg.layers, self.run_config.seed,
                                         cfg.population, cfg.sample_size,
                                         key=env.space.canonical, **EVOLUTION_DEFAULTS)
                    if cfg.searcher == "evolution"
                    else RandomSearch(len(env.space), cfg.layers, self.run_config.seed))
        done = 0
        while done < self.progress_total() and not session.stop:
            batch = [proposer.ask() for _ in range(min(cfg.round_size,
                                                       self.progress_total() - done))]
            self.evaluator.prepare_round(batch)
            for ids in batch:  # a round is trained together: it is stepped to its end
                env.step(ids)
                proposer.tell(ids, self.fitness(env.last))
            done += len(batch)

    def _drive_rl_agent(self, session: Session) -> None:
        """PPO or DQN on gymlab/NAS-v0, one env per candidate of a round, all sharing the
        evaluator (each vector step's candidates are prepared together). The agent's loop
        runs in this search's session: one of its steps is one candidate."""
        if self.config.searcher == "ppo":
            from gymlab.agents.ppo import PPO as Agent
        else:
            from gymlab.agents.dqn import DQN as Agent

        agent = Agent(ENV_ID, env_kwargs=self.env_kwargs(),
                      seed=self.run_config.seed,
                      eval_every=0, progress=False, logdir=None,
                      total_steps=self.progress_total(),
                      **rl_searcher_settings(self.config.searcher, self.config.round_size))
        try:
            seen: set[tuple[str, ...]] = set()  # a repeat is one in any env of the search
            envs = [env.unwrapped for env in agent.envs.envs]
            for env in envs:  # and the best networks so far are those of every env
                env.share(self.evaluator, seen, envs[0].elites)
            agent.envs.before_step = lambda actions: self.evaluator.prepare_round(
                [env.propose(a) for env, a in zip(envs, actions)])
            agent._learn(session)
        finally:
            agent.close()

    def fitness(self, result: CandidateResult) -> float:
        """How good a candidate is for this search (higher is better): what evolution is
        told, what ranks the leaderboard; the RL searchers' env rewards the same objective."""
        return self.objective.score(result)

    def _record(self, session: Session, ids: list[int], res: CandidateResult, hit: bool,
                reward: float) -> None:
        """One stepped candidate: kept, logged, and the best valid accuracy so far reported
        as the run's score."""
        if self.step >= self.progress_total():  # an RL agent's last vector step overshoots
            return
        screened = res.ok and len(res.valid_acc) < self.evaluator.epochs
        self.result.candidates.append(Candidate(self.step, ids, res, hit, reward, screened))
        self.step += 1
        if self.objective.feasible(res) and not screened:
            self.best_acc = max(self.best_acc, res.best_valid_acc)
        self.counts["hits"] += hit
        self.counts["failed"] += not res.ok
        session.logger.log(self.step, {
            "candidate/valid_acc": res.best_valid_acc if res.ok else 0.0,
            "candidate/built": float(res.ok), "candidate/reward": reward,
            "candidate/train_seconds": 0.0 if hit else res.seconds,
            "search/best_valid_acc": self.best_acc})
        session.progress.set(best=f"{self.best_acc:.2f}%", **self.counts)
        session.report(self.step, EvalResult(np.array([self.best_acc]),
                                             np.array([float(self.step)])))
        session.progress.update(self.step)

    # -- the end --------------------------------------------------------------------------
    def _on_end(self) -> None:
        result, evaluator = self.result, self.evaluator
        result.outcome, result.exit_code = self.outcome, self.exit_code
        best = result.best
        print(f"{len(result.candidates)} candidates in {time.perf_counter() - self.started:.1f}s"
              f", {self.counts['hits']} cache hits, {self.counts['failed']} not built or over a "
              f"cap; best valid accuracy {best.result.best_valid_acc:.2f}%: "
              f"{best.result.architecture}"
              if best else "no candidate could be built", file=sys.stderr)
        if (best is not None and self.config.retrain_best > 0 and evaluator.data is not None
                and self.outcome in ("completed", "solved")):
            longer = dataclasses.replace(evaluator.settings, epochs=self.config.retrain_best)
            final = train_candidate(best.ids, evaluator.space, evaluator.data, longer,
                                    keep_model=True)
            result.test_accuracy = test_split_accuracy(final.model, evaluator.data)
            print(f"retrained {self.config.retrain_best} epochs: valid "
                  f"{final.best_valid_acc:.2f}%, test {result.test_accuracy:.2f}%",
                  file=sys.stderr)
        if self.run is not None:
            write_outputs(self.run.path, result, evaluator)

    # -- checkpoints, eval ----------------------------------------------------------------
    def _weights(self) -> dict[str, Any]:
        board = [{"architecture": c.result.architecture, "layer_ids": list(c.ids),
                  "valid_acc": c.result.best_valid_acc, "params": c.result.params,
                  "seconds": c.result.seconds}
                 for c in self.result.leaderboard[:LEADERBOARD_KEPT]]
        return {"leaderboard": board or self.board}

    def _training_state(self) -> dict[str, Any]:
        return {}  # a resumed search replays from the cache

    def _load(self, weights: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.board = list(weights.get("leaderboard", []))

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> EvalResult:
        """The best valid accuracy the search found (its score); nothing is run."""
        best = self.board[0]["valid_acc"] if self.board else 0.0
        return EvalResult(np.array([best]), np.array([float(self.step)]))

    def eval_lines(self, source: str, episodes: int, seed: int | None) -> list[str]:
        """The run's leaderboard (as the checkpoint holds it)."""
        head = f"{self.run_name()} {source} ({self.step} candidates):"
        if not self.board:
            return [head, "  no candidate was built"]
        return [head, *(leaderboard_line(rank, row["valid_acc"], row["params"], row["seconds"],
                                         row["architecture"])
                        for rank, row in enumerate(self.board, 1))]

    @classmethod
    def resume(cls, run_dir: str | Path, **overrides: Any) -> NASSearch:
        """The search in `run_dir`, ready to `learn` on: it replays from its cache.jsonl, so
        it needs config.json only (not last.pt)."""
        cls.check_resumable(overrides)
        run = RunDir.open(run_dir)
        config = run.config()
        # config.json's first layout says "nas-<searcher>"
        if not str(config.get("algo", "")).startswith(cls.algo) or cls.algo not in config:
            raise UserError(f"{run_dir} is not a gymlab nas run")
        run_names = {f.name for f in dataclasses.fields(RunConfig)}
        try:
            run_section, own = cls.config_sections(config)
            run_config = build(RunConfig, run_section,
                               {k: v for k, v in overrides.items() if k in run_names})
            nas_config = build(NASConfig, own,
                               {k: v for k, v in overrides.items() if k not in run_names})
        except (KeyError, TypeError) as exc:
            raise UserError(f"{run_dir} is not a gymlab nas run ({exc})") from None
        search = cls.__new__(cls)
        search._setup(run_config, nas_config)
        search.run, search._resuming = run, True
        return search

    @classmethod
    def config_sections(cls, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        if "run" in config:
            return super().config_sections(config)
        own = dict(config[cls.algo])  # the first layout: run settings in the nas section
        run = {**cls.RUN_DEFAULTS, "env": ENV_ID,
               **{k: own.pop(k) for k in ("seed", "logdir", "progress") if k in own}}
        return run, own

    def close(self) -> None:
        self.evaluator.close()


def env_settings(config: NASConfig, seed: int) -> dict[str, Any]:
    """The environment's keyword arguments that come from the search's config."""
    objective = Objective.from_config(config)
    settings = TrainSettings(epochs=config.epochs, optimizer=config.optimizer, seed=seed,
                             max_params=config.max_params, max_flops=config.max_flops)
    return {"dataset": config.dataset, "data_dir": config.data_dir, "subset": config.subset,
            "space": config.space, "layers": config.layers, "epochs": config.epochs,
            "reward": config.reward, "train": dict(settings.__dict__),
            "evaluator": config.evaluator, "table": config.table,
            "objective": None if objective.plain else objective.to_json()}


def build_evaluator(config: NASConfig, seed: int) -> Evaluator:
    """The search's evaluator; it checks the data, space, table and Ray address before
    anything is written."""
    own = env_settings(config, seed)
    del own["reward"], own["objective"]
    evaluator = Evaluator.from_settings(
        **own, workers=config.workers, ray_address=config.ray_address,
        halving_epochs=config.halving_epochs, halving_eta=config.halving_eta,
        device=config.device)
    if config.ray_address is not None and evaluator.table is None:
        check_ray_address(config.ray_address)
    return evaluator


def rl_searcher_settings(searcher: str, round_size: int) -> dict[str, Any]:
    """The RL searcher's config: RL_SEARCHER_DEFAULTS with one env per candidate of a round,
    and as many updates per trained network whatever the round size."""
    settings = {**RL_SEARCHER_DEFAULTS[searcher], "num_envs": round_size}
    if searcher == "ppo":  # an update every 8 networks (at least one round)
        settings["num_steps"] = max(1, settings["num_steps"] // round_size)
    else:  # one gradient step per network
        settings["gradient_steps"] = round_size * settings.get("gradient_steps", 1)
    return settings


def test_split_accuracy(model: Any, data: Dataset) -> float:
    """Accuracy in % of `model` on the test split (NaN when the split is empty)."""
    import torch

    if len(data.x_test) == 0:
        return float("nan")
    with torch.no_grad():
        predictions = model.eval()(data.x_test).argmax(1)
    return float((predictions == data.y_test).float().mean()) * 100.0
