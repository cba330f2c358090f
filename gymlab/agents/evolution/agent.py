"""What GA and ES share: the MLP policy, the generation loop around a strategy's ask/tell,
batched evaluation, checkpoints of the search state, and acting with the best network."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from gymlab.agents.base import Agent
from gymlab.agents.evolution.parallel import PopulationEvaluator
from gymlab.agents.evolution.policy import ActionHead, EvoActivation, MLPSpec, ObsNorm, SharedPolicy
from gymlab.agents.evolution.rollout import Interrupted, evaluate_population
from gymlab.agents.evolution.vector_envs import make_batched_env, time_limit
from gymlab.core.config import require
from gymlab.core.envs import make_env
from gymlab.core.errors import UserError
from gymlab.core.evaluation import EvalResult
from gymlab.core.run import RunConfig
from gymlab.core.seeding import generator_state, set_generator_state
from gymlab.core.session import NonFiniteLoss, Session
from gymlab.core.spaces import ObservationEncoder


@dataclass(frozen=True)
class EvolutionConfig:
    """What every neuroevolution run has: the population, its evaluation, the network."""

    population: int = 64
    """Networks per generation."""
    generations: int = 100
    """Generations to run (the run also stops at total_steps environment steps, if given, and
    at stop_reward)."""
    episodes: int = 15
    """Episodes per network and generation; fitness is their mean return. Every network of a
    generation plays the same start states."""
    max_episode_steps: int | None = None
    """Time limit of an episode, in training and evaluation (none: the environment's own)."""
    hidden_sizes: tuple[int, ...] = (16,)
    """Hidden layer sizes of the policy MLP."""
    activation: EvoActivation = "relu"
    """Activation between hidden layers."""
    init_std: float = 1.0
    """Initial weights are N(0, init_std^2), biases zero."""
    normalize_obs: bool = False
    """Normalise observations by running mean/std of everything the population saw (updated
    between generations, saved with the network)."""
    workers: int = 1
    """Processes evaluating the population (this one included); results do not depend on it."""
    ray_address: str | None = None
    """Evaluate on a Ray cluster at HOST:PORT (local: start one here); none: no Ray."""

    def __post_init__(self) -> None:
        require(self.population >= 2, f"population must be at least 2, got {self.population}")
        for name in ("generations", "episodes", "workers"):
            require(getattr(self, name) > 0, f"{name} must be positive, got {getattr(self, name)}")
        require(self.max_episode_steps is None or self.max_episode_steps > 0,
                f"max_episode_steps must be positive, got {self.max_episode_steps}")
        require(all(h > 0 for h in self.hidden_sizes), "hidden_sizes must be positive")
        require(self.init_std > 0, f"init_std must be positive, got {self.init_std}")


class EvolutionAgent(Agent):
    """Base of GA and ES: subclasses set `algo`, `Config` and build `self.strategy`, an
    object with ask() -> [N, D] candidates, tell(fitness [N]), best() -> the network to act
    with [D], scalars() -> what to log, and state_dict()/load_state_dict()."""

    config: EvolutionConfig
    unit = "generation"
    uses_torch = False
    RUN_DEFAULTS = {"total_steps": 10**15, "eval_every": 1, "log_every": 1}
    """No step budget (theirs is `generations`), and an evaluation and a log line after every
    generation (each one is at least one step)."""
    RESUMABLE = Agent.RESUMABLE | {"generations", "workers", "ray_address"}
    """generations extends the run; the results do not depend on where they are computed."""

    def _setup(self, run_config: RunConfig, config: Any) -> None:
        if config.max_episode_steps is not None:  # so eval, record and plot see it too
            kwargs = {**run_config.env_kwargs, "max_episode_steps": config.max_episode_steps}
            run_config = dataclasses.replace(run_config, env_kwargs=kwargs)
        super()._setup(run_config, config)

    def _build(self) -> None:
        cfg, run = self.config, self.run_config
        env = make_env(run.env, kwargs=run.env_kwargs)
        try:
            self.encoder = ObservationEncoder(env.observation_space)
            self.head = ActionHead.for_space(env.action_space, self.algo.upper())
        finally:
            env.close()
        if time_limit(run.env, run.env_kwargs) is None:
            raise UserError(f"{run.env} has no time limit: give one with --max-episode-steps")
        if cfg.ray_address is not None:
            from gymlab.core.ray import check_ray_address

            check_ray_address(cfg.ray_address)
        self.spec = MLPSpec((self.encoder.size, *cfg.hidden_sizes, self.head.size),
                            cfg.activation)
        self.rng = np.random.default_rng(run.seed)  # initial networks, mutations, noise
        self.episode_rng = np.random.default_rng(run.seed + 1)  # start states of generations
        self.obs_rms = ObsStatistics(self.encoder.size, cfg.normalize_obs)
        self.generation = 0
        self.strategy = self._make_strategy()
        self.best_params = self.strategy.best()

    def _make_strategy(self) -> Any:
        raise NotImplementedError

    # -- acting -------------------------------------------------------------------------------
    def _norm(self) -> tuple[np.ndarray, np.ndarray] | None:
        return (self.obs_rms.mean, self.obs_rms.var) if self.config.normalize_obs else None

    def batch_policy(self) -> SharedPolicy:
        norm = self._norm()
        return SharedPolicy(self.spec, self.head, self.best_params,
                            ObsNorm(*norm) if norm is not None else None)

    def act(self, obs: Any) -> Any:
        action = self.batch_policy().solo(0)(self.encoder(obs))
        return int(action) if self.head.kind == "discrete" else action

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> EvalResult:
        seed = self.run_config.seed + 2_000_000 if seed is None else seed
        evaluator = BatchedEvaluator(self.run_config.env, self.run_config.env_kwargs, episodes,
                                     seed)
        try:
            return evaluator(self.batch_policy())
        finally:
            evaluator.close()

    def make_evaluator(self) -> BatchedEvaluator:
        """The same seeded episodes as Agent's evaluator, played as one batch."""
        run = self.run_config
        return BatchedEvaluator(run.env, run.env_kwargs, run.eval_episodes, run.seed + 1_000_000)

    def progress_total(self) -> int:
        return self.config.generations

    def progress_count(self) -> int:
        return self.generation

    # -- the generation loop ------------------------------------------------------------------
    def learn(self, total_steps: int | None = None, on_eval: Any = None,
              generations: int | None = None) -> EvolutionAgent:
        """Run until `generations` in all (default: the config's), `total_steps` environment
        steps, stop_reward, `on_eval` returning True, or Ctrl-C."""
        if generations is not None:
            self.config = dataclasses.replace(self.config, generations=generations)
        return super().learn(total_steps, on_eval)  # type: ignore[return-value]

    def _learn(self, session: Session) -> None:
        cfg, run = self.config, self.run_config
        stop = lambda: session.interrupt.requested  # noqa: E731
        with PopulationEvaluator(run.env, run.env_kwargs, self.spec, self.head, cfg.workers,
                                 cfg.ray_address) as evaluate:
            while (self.generation < cfg.generations and self.step < run.total_steps
                   and not session.stop):
                start = time.perf_counter()
                before = self._search_state()
                # 1. ask the strategy for candidates; 2. score each on the same episodes
                candidates = self.strategy.ask()
                seeds = self.episode_rng.integers(2**31 - 1, size=cfg.episodes)
                try:
                    result = evaluate(candidates, seeds, self._norm(), cfg.normalize_obs, stop)
                except Interrupted:  # a part-evaluated generation is not kept
                    self._load_search_state(before)
                    break
                # 3. tell it their fitness
                fitness = result.fitness
                check_finite(fitness)
                self.strategy.tell(fitness)
                self.best_params = self.strategy.best()
                self.step += result.steps
                self.generation += 1
                if cfg.normalize_obs:
                    self._update_obs_rms(result.obs_sum, result.obs_sq_sum, result.steps)
                seconds = time.perf_counter() - start
                scalars = {"evolution/fitness_max": float(fitness.max()),
                           "evolution/fitness_mean": float(fitness.mean()),
                           "evolution/fitness_min": float(fitness.min()),
                           "evolution/generation": self.generation,
                           "evolution/episode_length_mean": float(result.lengths.mean()),
                           **self.strategy.scalars()}
                if session.log_due(self.step):
                    session.log(self.step, scalars)
                session.progress.write(
                    f"generation {self.generation}/{cfg.generations}: highest fitness "
                    f"{fitness.max():.2f}, average {fitness.mean():.2f} ({result.steps:,} steps,"
                    f" {result.steps / seconds / 1e6:.2f} M steps/s)")
                session.on_step(self.step)

    def _update_obs_rms(self, sums: Any, sq_sums: Any, count: int) -> None:
        total, total_sq = sums.sum(0), sq_sums.sum(0)
        mean = total / count
        self.obs_rms.update_from_moments(mean, np.maximum(total_sq / count - mean**2, 0.0),
                                         count)

    # -- state --------------------------------------------------------------------------------
    def _search_state(self) -> dict[str, Any]:
        return {"strategy": self.strategy.state_dict(), "rng": generator_state(self.rng),
                "episode_rng": generator_state(self.episode_rng)}

    def _load_search_state(self, state: dict[str, Any]) -> None:
        self.strategy.load_state_dict(state["strategy"])
        set_generator_state(self.rng, state["rng"])
        set_generator_state(self.episode_rng, state["episode_rng"])

    def _weights(self) -> dict[str, Any]:
        return {"params": self.best_params.copy(), "obs_rms": self.obs_rms.state_dict()}

    def _training_state(self) -> dict[str, Any]:
        return {**self._search_state(), "generation": self.generation}

    def _load(self, weights: dict[str, Any], state: dict[str, Any] | None) -> None:
        params = as_array(weights["params"])
        if params.shape != (self.spec.n_params,):
            raise UserError(f"checkpoint network has {params.size} parameters, the config's "
                            f"{self.spec.n_params}")
        self.best_params = params
        self.obs_rms.load_state_dict(weights["obs_rms"])
        if state is not None:
            self._load_search_state(state)
            self.generation = int(state["generation"])


class ObsStatistics:
    """Running mean and variance of the observations (core.normalize.RunningMeanStd, whose
    module imports torch, made only when normalize_obs asks for it) saved as numpy arrays."""

    def __init__(self, size: int, enabled: bool) -> None:
        self.size, self.stats = size, None
        if enabled:
            from gymlab.core.normalize import RunningMeanStd

            self.stats = RunningMeanStd((size,))

    @property
    def mean(self) -> np.ndarray:
        return self.stats.mean if self.stats is not None else np.zeros(self.size)

    @property
    def var(self) -> np.ndarray:
        return self.stats.var if self.stats is not None else np.ones(self.size)

    def update_from_moments(self, mean: np.ndarray, var: np.ndarray, count: float) -> None:
        assert self.stats is not None
        self.stats.update_from_moments(mean, var, count)

    def state_dict(self) -> dict[str, Any]:
        count = self.stats.count if self.stats is not None else 1e-4
        return {"mean": np.array(self.mean), "var": np.array(self.var), "count": float(count)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.stats is not None:
            self.stats.mean, self.stats.var = as_array(state["mean"]), as_array(state["var"])
            self.stats.count = float(state["count"])


class BatchedEvaluator:
    """The session's Evaluator (episode i seeded seed + i) on a batched environment: the same
    episodes, bit for bit on CartPole, at the speed of population evaluation."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], episodes: int,
                 seed: int) -> None:
        self.env = make_batched_env(env_id, env_kwargs)
        self.seeds = seed + np.arange(episodes)

    def __call__(self, policy: SharedPolicy) -> EvalResult:
        fitness = evaluate_population(self.env, policy.spec, policy.head, policy.params[None],
                                      self.seeds, policy.norm)  # a population of one
        return EvalResult(fitness.returns[0], fitness.lengths[0])

    def close(self) -> None:
        self.env.close()


def tie_averaged(fitness: np.ndarray, values_by_rank: np.ndarray) -> np.ndarray:
    """values_by_rank[r] for the network of rank r (0: the worst), averaged over networks of
    equal fitness: with a capped return (CartPole's 500) many tie, and a tie broken by index
    would push the search in a random direction."""
    n = len(fitness)
    order = np.argsort(fitness, kind="stable")
    ranked = fitness[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # of each tie group
    counts = np.diff(np.r_[starts, n])
    out = np.empty(n)
    out[order] = np.repeat(np.add.reduceat(values_by_rank, starts) / counts, counts)
    return out


def as_array(value: Any) -> np.ndarray:
    """A copy of a saved array: a numpy array, or the tensor of a checkpoint in torch's
    layout (as GA and ES wrote them before their checkpoints were numpy's)."""
    return value.numpy().copy() if hasattr(value, "numpy") else np.array(value)


def check_finite(fitness: np.ndarray) -> None:
    if not np.isfinite(fitness).all():
        bad = int((~np.isfinite(fitness)).sum())
        raise NonFiniteLoss(f"{bad} networks got a non-finite fitness (NaN or inf returns)")

