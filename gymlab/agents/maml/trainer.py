"""`MAML`: MAML-TRPO as a gymlab Algorithm, the meta-training loop around metalearner.py's
update, and its evaluation (the adaptation curve).

The run is core's (gymlab.core.algorithm): every meta-batch is logged (total_rewards/
before_update and after_update, trpo/*, time/*) and reported as the run's score, the
after-update returns of its tasks, so checkpoints/best.pt holds the best after-update
policy, and checkpoints/last.pt, written after every batch with every generator's state,
lets a resumed run continue with the very numbers it would have had.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gymlab.agents.maml import fast
from gymlab.agents.maml.allocator import reuse_freed_memory
from gymlab.agents.maml.config import (
    FAMILIES,
    FAMILY_DEFAULTS,
    MAMLConfig,
    family_env,
    resolve_env,
)
from gymlab.agents.maml.episodes import LinearFeatureBaseline, TaskEpisodes, fit_advantages
from gymlab.agents.maml.evaluation import (
    TEST_SEED_OFFSET,
    AdaptationCurve,
    choose_later_step_fraction,
    seeded,
)
from gymlab.agents.maml.metalearner import MetaBatch, trpo_step
from gymlab.agents.maml.policy import Params, make_policy, parameters, per_task
from gymlab.agents.maml.samplers import BatchEnv, VectorEnvBatch, rollout
from gymlab.core.algorithm import Algorithm
from gymlab.core.errors import CheckpointError, UserError
from gymlab.core.evaluation import EvalResult
from gymlab.core.seeding import generator_state, set_generator_state
from gymlab.core.session import NonFiniteLoss, Session

EVAL_TASKS = 40
"""New tasks of `gymlab eval` (the MAML paper's protocol)."""
EVAL_GRAD_STEPS = 3
"""Inner steps of the adaptation curve `gymlab eval` prints."""
RUN_FIELDS = ("env", "env_kwargs", "seed", "progress")
"""Settings a config.json without a "run" section (gymlab's first layout) keeps in its maml
section."""


class MAML(Algorithm):
    """MAML-TRPO on a task family. `MAML("Navigation2D-v0", num_batches=100).learn()`."""

    algo = "maml"
    Config = MAMLConfig
    default_env = "Navigation2D-v0"
    unit = "meta-batch"
    scores_itself = True
    TUNED = FAMILY_DEFAULTS
    RUN_DEFAULTS = {"total_steps": 10**15, "eval_every": 0, "log_every": 1}
    """The budget is num_batches (total_steps, in meta-batches, only cuts it shorter); every
    batch is scored, so there is no periodic evaluation."""
    RESUMABLE = Algorithm.RESUMABLE | {"num_batches", "num_workers", "ray_address",
                                       "later_step_fraction", "later_step_tasks"}
    """How long it goes on, how it reports, where it steps, how it is tested: never how it
    learns."""

    config: MAMLConfig

    def _build(self) -> None:
        cfg, run = self.config, self.run_config
        self.env_id = resolve_env(run.env)
        kwargs = dict(run.env_kwargs)
        if cfg.max_episode_steps is not None:
            kwargs["max_episode_steps"] = cfg.max_episode_steps
        self.env_kwargs = kwargs
        try:
            self.device = torch.device(cfg.device)
            torch.empty(0, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            raise UserError(f"device {cfg.device!r} is not usable here ({exc})") from None
        if cfg.ray_address is not None:
            from gymlab.core.ray import check_ray_address

            check_ray_address(cfg.ray_address)  # before anything is written
        reuse_freed_memory()  # the meta-update's large tensors: see allocator.py
        self.family = family_env(self.env_id, kwargs)
        self.policy = make_policy(self.family.observation_space, self.family.action_space,
                                  cfg.policy, cfg.hidden_sizes, cfg.nonlinearity,
                                  self.env_id).to(self.device)
        self.baseline = LinearFeatureBaseline()
        self.task_rng = np.random.default_rng(run.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(run.seed + 1)
        self._samplers: dict[tuple[int, int], BatchEnv] = {}
        self._ray: Any = None  # the RaySession of the sampler's actors, once one is made
        self._later_step: tuple[int, float] = (-1, 0.0)  # (self.step, its chosen fraction)

    def progress_total(self) -> int:
        return min(self.config.num_batches, self.run_config.total_steps)

    # -- sampling -------------------------------------------------------------------------------
    def sampler(self, tasks: int, episodes: int) -> BatchEnv:
        """The batch environment for K tasks x B episodes (kept for reuse)."""
        key = (tasks, episodes)
        if key not in self._samplers:
            if self.env_id == FAMILIES["Navigation2D-v0"] and set(self.run_config.env_kwargs) <= {
                    "low", "high"}:
                from gymlab.envs.navigation_batch import NavigationBatch

                horizon = self.config.max_episode_steps or self.family.spec.max_episode_steps
                self._samplers[key] = NavigationBatch(self.device, int(horizon))
            else:
                workers, on_ray = self.config.num_workers, self.config.ray_address is not None
                if on_ray:
                    workers = self._ray_actors()
                self._samplers[key] = VectorEnvBatch(self.env_id, self.env_kwargs, tasks,
                                                     episodes, workers, self.device, on_ray)
        return self._samplers[key]

    def _ray_actors(self) -> int:
        """Joins (or starts) Ray once per run: actors per sampler, num_workers or, for 1, the
        cluster's CPUs."""
        if self._ray is None:
            from gymlab.core.ray import RaySession

            address = self.config.ray_address
            self._ray = RaySession(None if address == "local" else address, 1)
            self._ray_cpus = self._ray.__enter__()
        return self.config.num_workers if self.config.num_workers > 1 else max(self._ray_cpus, 1)

    def sample(self, tasks: list[dict[str, Any]], episodes: int, params: Any) -> TaskEpisodes:
        """`episodes` episodes of every task, with the policy (params None) or each task's
        own parameters, their advantages fitted."""
        env = self.sampler(len(tasks), episodes)
        seeds = self.task_rng.integers(2**31 - 1, size=len(tasks) * episodes)
        batch = rollout(env, self.policy, params, tasks, episodes, self.generator, seeds,
                        self.config.action_scale)
        return fit_advantages(batch, self.baseline, self.config.gamma, self.config.tau)

    def sample_meta_batch(self, tasks: list[dict[str, Any]]) -> MetaBatch:
        """Inner-loop episodes (num_steps rounds) and the adapted policies' episodes."""
        cfg = self.config
        adapted, train = None, []
        for _ in range(cfg.num_steps):
            train.append(self.sample(tasks, cfg.fast_batch_size, adapted))
            adapted = self.adapted(adapted, train[-1])
        return MetaBatch(train, self.sample(tasks, cfg.fast_batch_size, adapted))

    def adapted(self, params: Params | None, episodes: TaskEpisodes,
                fast_lr: float | None = None) -> Params:
        """Every task's parameters after one inner step (of `fast_lr`, default the config's)
        on its episodes, detached (for sampling): from the policy's (params None) or from a
        task's adapted ones."""
        if params is None:
            shared = {k: v.detach().requires_grad_() for k, v in parameters(self.policy).items()}
            params = per_task(shared, episodes.mask.shape[0])
        lr = self.config.fast_lr if fast_lr is None else fast_lr
        step = fast.adapted(self.policy, params, episodes, lr)
        return {k: v.requires_grad_() for k, v in step.items()}

    # -- training -------------------------------------------------------------------------------
    def _learn(self, session: Session) -> None:
        while self.step < self.progress_total() and not session.stop:
            scalars, score = self.train_batch()
            session.log(self.step, scalars)
            session.progress.set(before=round(scalars["total_rewards/before_update"], 2),
                                 after=round(score.mean, 2))
            session.report(self.step, score)
            session.on_step(self.step)

    def train_batch(self) -> tuple[dict[str, float], EvalResult]:
        """Sample a meta-batch of new tasks and update the policy: the batch's scalars, and
        its score (per task, the adapted policy's mean return and episode length)."""
        start, cpu = time.perf_counter(), time.process_time()
        tasks = self.family.unwrapped.sample_tasks(self.config.meta_batch_size, self.task_rng)
        batch = self.sample_meta_batch(tasks)
        sampled = time.perf_counter()
        objective = fast.meta_objective(self.policy, batch, self.config)
        stats = trpo_step(self.policy, objective, self.config)
        if not all(math.isfinite(p.sum().item()) for p in self.policy.parameters()):
            raise NonFiniteLoss("the policy's parameters are no longer finite")
        self.step += 1
        valid = batch.valid
        score = EvalResult(valid.returns.mean(1).double().cpu().numpy(),
                           valid.mask.sum(-1).mean(1).double().cpu().numpy())
        steps = sum(ep.steps for ep in batch.train) + valid.steps
        scalars = {"total_rewards/before_update": batch.train[0].returns.mean().item(),
                   "total_rewards/after_update": valid.returns.mean().item(),
                   "trpo/loss_before": stats.loss_before, "trpo/loss_after": stats.loss_after,
                   "trpo/kl": stats.kl, "trpo/line_search_steps": stats.line_search_steps,
                   "time/env_steps": steps, "time/sample_seconds": sampled - start,
                   "time/batch_seconds": time.perf_counter() - start,
                   "time/batch_cpu_seconds": time.process_time() - cpu}
        return scalars, score

    # -- evaluation -----------------------------------------------------------------------------
    def adaptation_curve(self, tasks: int = EVAL_TASKS, grad_steps: int = EVAL_GRAD_STEPS,
                         episodes: int = 40, seed: int | None = None,
                         fast_lr: float | Sequence[float] | None = None) -> AdaptationCurve:
        """The MAML paper's protocol: new tasks; returns of `episodes` episodes per task with
        theta, then after each of `grad_steps` inner steps on those episodes. `fast_lr` is
        the step size: none for `default_test_lr`, a number for every step, or one per step
        (the last one repeated), e.g. (0.5, 0.25): the MAML authors' test code stepped half
        its first step size after the first step."""
        if tasks < 2 or grad_steps < 0 or episodes < 1:
            raise UserError(f"need tasks >= 2, grad_steps >= 0 and episodes >= 1, got "
                            f"{tasks}, {grad_steps}, {episodes}")
        lrs = step_sizes(self.default_test_lr(grad_steps) if fast_lr is None else fast_lr,
                         grad_steps)
        with seeded(self, self.run_config.seed + TEST_SEED_OFFSET if seed is None else seed):
            goals = self.family.unwrapped.sample_tasks(tasks, self.task_rng)
            adapted, returns, lengths = None, [], []
            for step in range(grad_steps + 1):
                batch = self.sample(goals, episodes, adapted)
                returns.append(batch.returns.mean(1).cpu().numpy())
                lengths.append(batch.mask.sum(-1).mean(1).cpu().numpy())
                if step < grad_steps:
                    adapted = self.adapted(adapted, batch, lrs[step])
        return AdaptationCurve(np.stack(returns).astype(np.float64),
                               np.stack(lengths).astype(np.float64))

    def default_test_lr(self, grad_steps: int) -> list[float]:
        """Test-time step sizes: fast_lr for the num_steps steps training took, then
        later_step_fraction times fast_lr (with later_step_tasks, the fraction this policy
        does best with on as many validation tasks), halved at each further step. The inner
        loss's advantages are normalised per task, so a step's length does not shrink as
        the policy nears the goal: a step as long as the trained one, taken from the
        adapted policy, overshoots; shorter and shorter ones keep improving."""
        cfg = self.config
        fraction = self.later_step_fraction() if grad_steps > cfg.num_steps else 0.0
        return [cfg.fast_lr if step < cfg.num_steps
                else cfg.fast_lr * fraction * 0.5 ** (step - cfg.num_steps)
                for step in range(max(grad_steps, 1))]

    def later_step_fraction(self) -> float:
        """later_step_fraction, or with later_step_tasks the policy's own (chosen once per
        meta-batch count: choose_later_step_fraction)."""
        if not self.config.later_step_tasks:
            return self.config.later_step_fraction
        if self._later_step[0] != self.step:
            fraction, _ = choose_later_step_fraction(self, self.config.later_step_tasks)
            self._later_step = (self.step, fraction)
        return self._later_step[1]

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> EvalResult:
        """On EVAL_TASKS new tasks, per task the mean return of `episodes` episodes after
        num_steps inner steps (the score training reports, on unseen tasks)."""
        curve = self.adaptation_curve(EVAL_TASKS, self.config.num_steps, episodes, seed)
        return EvalResult(curve.returns[-1], curve.lengths[-1])

    def eval_lines(self, source: str, episodes: int, seed: int | None) -> list[str]:
        """The adaptation curve: returns after 0..EVAL_GRAD_STEPS inner steps."""
        curve = self.adaptation_curve(EVAL_TASKS, EVAL_GRAD_STEPS, episodes, seed)
        lrs = ", ".join(f"{lr:g}" for lr in self.default_test_lr(EVAL_GRAD_STEPS))
        chosen = (f" (the step after the trained ones chosen on {self.config.later_step_tasks} "
                  f"validation tasks)" if self.config.later_step_tasks else "")
        return [f"{self.run_config.env} {source} ({self.step} meta-batches), {EVAL_TASKS} new "
                f"tasks, {episodes} episodes per step, step sizes {lrs}{chosen}:",
                *curve.table()]

    # -- the run directory and checkpoints --------------------------------------------------
    def run_path(self) -> Path | None:
        """output_folder (pytorch-maml-rl's flag), with SLURM's job id when there is one."""
        if self.config.output_folder is None:
            return None
        job = os.environ.get("SLURM_JOB_ID")
        return Path(str(self.config.output_folder) + (f"-{job}" if job else ""))

    def _weights(self) -> dict[str, Any]:
        return {k: v.detach().cpu() for k, v in self.policy.state_dict().items()}

    def _training_state(self) -> dict[str, Any]:
        return {"task_rng": generator_state(self.task_rng),
                "generator": self.generator.get_state().cpu()}

    def _load(self, weights: dict[str, Any], state: dict[str, Any] | None) -> None:
        try:
            self.policy.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"the checkpoint does not fit the policy of its config "
                                  f"({str(exc).splitlines()[0]})") from None
        if state is not None:
            set_generator_state(self.task_rng, state["task_rng"])
            self.generator.set_state(state["generator"])
            state.setdefault("session", {})  # a checkpoint of the first layout has none

    @classmethod
    def config_sections(cls, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        if "run" in config:
            return super().config_sections(config)
        own = dict(config[cls.algo])  # an older run: its run settings in the maml section
        run = {**cls.RUN_DEFAULTS, **{k: own.pop(k) for k in RUN_FIELDS if k in own}}
        return run, own

    def close(self) -> None:
        for env in self._samplers.values():
            env.close()
        self._samplers.clear()
        if self._ray is not None:
            self._ray.__exit__()
            self._ray = None
        self.family.close()


def step_sizes(fast_lr: float | Sequence[float], steps: int) -> list[float]:
    """One positive step size per inner step: a number for all of them, or a sequence whose
    last entry repeats; UserError for an empty sequence or a step size <= 0."""
    lrs = [float(fast_lr)] if isinstance(fast_lr, (int, float)) else [float(x) for x in fast_lr]
    if not lrs or not all(lr > 0 for lr in lrs):
        raise UserError(f"fast_lr must be positive (one number, or one per step), got {fast_lr}")
    return (lrs + lrs[-1:] * steps)[:max(steps, 1)]
