"""`MAML`: a meta-training run around the update of metalearner.py, and its evaluation.

The run directory is gymlab's: config.json, TensorBoard scalars (total_rewards/before_update
and total_rewards/after_update per batch) and progress.jsonl, checkpoints/last.pt after
every batch and best.pt when the after-update return improves, both written atomically with
every generator's state, so a resumed run continues with the very numbers it would have had.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import sys
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
from gymlab.agents.maml.evaluation import AdaptationCurve
from gymlab.agents.maml.metalearner import MetaBatch, trpo_step
from gymlab.agents.maml.policy import Params, make_policy, parameters, per_task
from gymlab.agents.maml.samplers import BatchEnv, VectorEnvBatch, rollout
from gymlab.core.config import build, to_dict
from gymlab.core.errors import CheckpointError, UserError
from gymlab.core.logger import Logger, Progress
from gymlab.core.run import (
    GracefulInterrupt,
    RunDir,
    atomic_write_text,
    generator_state,
    load_checkpoint,
    rng_states,
    save_checkpoint,
    set_generator_state,
    set_rng_states,
    versions,
)
from gymlab.core.session import NonFiniteLoss

ALGO = "maml"
RESUMABLE = frozenset({"num_batches", "progress", "num_workers"})
"""What a resumed run may change: how long it goes on, how it reports, where it steps."""


class MAML:
    """MAML-TRPO on a task family. `MAML(env="Navigation2D-v0", num_batches=100).learn()`."""

    def __init__(self, config: MAMLConfig | None = None, **overrides: Any) -> None:
        if config is None:
            env = overrides.get("env", MAMLConfig.env)
            short = str(env).removeprefix("gymlab/")
            config = build(MAMLConfig, FAMILY_DEFAULTS.get(short, {}), overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self._setup(config)

    def _setup(self, cfg: MAMLConfig) -> None:
        self.config = cfg
        self.env_id = resolve_env(cfg.env)
        kwargs = dict(cfg.env_kwargs)
        if cfg.max_episode_steps is not None:
            kwargs["max_episode_steps"] = cfg.max_episode_steps
        self.env_kwargs = kwargs
        try:
            self.device = torch.device(cfg.device)
            torch.empty(0, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            raise UserError(f"device {cfg.device!r} is not usable here ({exc})") from None
        torch.set_num_threads(1)
        reuse_freed_memory()  # the meta-update's tensors: see allocator.py
        torch.manual_seed(cfg.seed)
        self.family = family_env(self.env_id, kwargs)
        self.policy = make_policy(self.family.observation_space, self.family.action_space,
                                  cfg.policy, cfg.hidden_sizes, cfg.nonlinearity,
                                  self.env_id).to(self.device)
        self.baseline = LinearFeatureBaseline()
        self.task_rng = np.random.default_rng(cfg.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.batch = 0
        self.best_after = -math.inf
        self.run: RunDir | None = None
        self.outcome = "new"
        self.exit_code = 0
        """0 when the run completed, 1 when it diverged, 128 + the signal when interrupted."""
        self._samplers: dict[tuple[int, int], BatchEnv] = {}

    # -- sampling -------------------------------------------------------------------------------
    def sampler(self, tasks: int, episodes: int) -> BatchEnv:
        """The batch environment for K tasks x B episodes (kept for reuse)."""
        key = (tasks, episodes)
        if key not in self._samplers:
            if self.env_id == FAMILIES["Navigation2D-v0"] and set(self.config.env_kwargs) <= {
                    "low", "high"}:
                from gymlab.envs.navigation import NavigationBatch

                horizon = self.config.max_episode_steps or self.family.spec.max_episode_steps
                self._samplers[key] = NavigationBatch(self.device, int(horizon))
            else:
                self._samplers[key] = VectorEnvBatch(self.env_id, self.env_kwargs, tasks,
                                                     episodes, self.config.num_workers,
                                                     self.device)
        return self._samplers[key]

    def sample(self, tasks: list[dict[str, Any]], episodes: int, params: Any) -> TaskEpisodes:
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
    def learn(self, num_batches: int | None = None) -> MAML:
        """Meta-train until `num_batches` in all (default: the config's) or Ctrl-C."""
        cfg = self.config
        if num_batches is not None:
            self.config = cfg = dataclasses.replace(cfg, num_batches=num_batches)
        resuming = self.run is not None
        if self.run is None:
            self.run = self._create_run_dir()
        print(f"run directory: {self.run.path}", file=sys.stderr)
        logger = Logger(self.run, self.batch if resuming else None)
        progress = Progress(cfg.num_batches, self.batch, f"maml {self.env_id} batch",
                            cfg.progress, sys.stderr, unit="update")
        self.outcome, self.exit_code = "completed", 0
        try:
            with GracefulInterrupt() as interrupt:
                while self.batch < cfg.num_batches and not interrupt.requested:
                    scalars = self.train_batch()
                    logger.log(self.batch, scalars)
                    progress.set(before=round(scalars["total_rewards/before_update"], 2),
                                 after=round(scalars["total_rewards/after_update"], 2))
                    progress.update(self.batch)
                    self._save(scalars["total_rewards/after_update"], logger)
                if interrupt.requested:
                    self.outcome, self.exit_code = "interrupted", interrupt.exit_code
        except NonFiniteLoss as exc:
            self.outcome, self.exit_code = "diverged", 1
            print(f"stopped at batch {self.batch}: {exc}; kept the last good checkpoint",
                  file=sys.stderr)
        finally:
            progress.close()
            logger.close()
        if self.outcome == "interrupted":
            print(f"interrupted at batch {self.batch}; resume with: gymlab meta maml --resume "
                  f"{shlex.quote(str(self.run.path))}", file=sys.stderr)
        elif self.outcome == "completed":
            print(f"finished {self.batch} batches; best after-update return "
                  f"{self.best_after:.2f}", file=sys.stderr)
        return self

    def train_batch(self) -> dict[str, float]:
        """Sample a meta-batch of new tasks, update the policy; the batch's scalars."""
        start, cpu = time.perf_counter(), time.process_time()
        tasks = self.family.unwrapped.sample_tasks(self.config.meta_batch_size, self.task_rng)
        batch = self.sample_meta_batch(tasks)
        sampled = time.perf_counter()
        stats = trpo_step(self.policy, fast.meta_objective(self.policy, batch, self.config),
                          self.config)
        if not all(math.isfinite(p.sum().item()) for p in self.policy.parameters()):
            raise NonFiniteLoss("the policy's parameters are no longer finite")
        self.batch += 1
        steps = sum(ep.steps for ep in batch.train) + batch.valid.steps
        return {"total_rewards/before_update": batch.train[0].returns.mean().item(),
                "total_rewards/after_update": batch.valid.returns.mean().item(),
                "trpo/loss_before": stats.loss_before, "trpo/loss_after": stats.loss_after,
                "trpo/kl": stats.kl, "trpo/line_search_steps": stats.line_search_steps,
                "time/env_steps": steps, "time/sample_seconds": sampled - start,
                "time/batch_seconds": time.perf_counter() - start,
                "time/batch_cpu_seconds": time.process_time() - cpu}

    # -- evaluation -----------------------------------------------------------------------------
    def adaptation_curve(self, tasks: int = 40, grad_steps: int = 3, episodes: int = 40,
                         seed: int | None = None,
                         fast_lr: float | Sequence[float] | None = None) -> AdaptationCurve:
        """The MAML paper's protocol: new tasks; returns of `episodes` episodes per task with
        theta, then after each of `grad_steps` inner steps on those episodes. `fast_lr` is
        the step size: none for the config's, a number for every step, or one per step (the
        last one repeated), e.g. (0.5, 0.25): the MAML authors' test code stepped half its
        first step size after the first step."""
        if tasks < 2 or grad_steps < 0 or episodes < 1:
            raise UserError(f"need tasks >= 2, grad_steps >= 0 and episodes >= 1, got "
                            f"{tasks}, {grad_steps}, {episodes}")
        lrs = step_sizes(self.config.fast_lr if fast_lr is None else fast_lr, grad_steps)
        seed = self.config.seed + 1_000_000 if seed is None else seed
        saved = (generator_state(self.task_rng), self.generator.get_state())
        self.task_rng = np.random.default_rng(seed)
        self.generator.manual_seed(seed + 1)
        try:
            goals = self.family.unwrapped.sample_tasks(tasks, self.task_rng)
            adapted, returns = None, []
            for step in range(grad_steps + 1):
                batch = self.sample(goals, episodes, adapted)
                returns.append(batch.returns.mean(1).cpu().numpy())
                if step < grad_steps:
                    adapted = self.adapted(adapted, batch, lrs[step])
        finally:
            set_generator_state(self.task_rng, saved[0])
            self.generator.set_state(saved[1])
        return AdaptationCurve(np.stack(returns).astype(np.float64))

    # -- run directory and checkpoints ------------------------------------------------------
    def _create_run_dir(self) -> RunDir:
        cfg = self.config
        job = os.environ.get("SLURM_JOB_ID")
        suffix = f"-{job}" if job else ""
        if cfg.output_folder is not None:
            path = Path(cfg.output_folder + suffix)
            if path.exists() and any(path.iterdir()):
                raise UserError(f"{path} already exists and is not empty; continue it with "
                                f"--resume {path}, or choose another --output-folder")
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = Path("runs") / f"maml-{cfg.env.replace('/', '_')}-{stamp}{suffix}"
            n = 1
            while path.exists():
                n += 1
                path = path.with_name(f"maml-{cfg.env.replace('/', '_')}-{stamp}-{n}{suffix}")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the run directory {path}: {exc.strerror}") from None
        record = {"algo": ALGO, ALGO: to_dict(cfg), "versions": versions(), "command": sys.argv}
        atomic_write_text(path / "config.json", json.dumps(record, indent=2) + "\n")
        return RunDir(path)

    def checkpoint(self, full: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "config": {ALGO: to_dict(self.config)}, "step": self.batch,
            "weights": {k: v.detach().cpu() for k, v in self.policy.state_dict().items()},
            "best_after": self.best_after}
        if full:
            payload["state"] = {"task_rng": generator_state(self.task_rng),
                                "generator": self.generator.get_state().cpu(),
                                "global_rng": rng_states()}
        return payload

    def _save(self, after: float, logger: Logger) -> None:
        assert self.run is not None
        logger.flush()
        if after > self.best_after:
            self.best_after = after
            save_checkpoint(self.run.checkpoint("best"), ALGO, self.checkpoint(full=False))
        save_checkpoint(self.run.checkpoint("last"), ALGO, self.checkpoint(full=True))

    def save(self, path: str | Path) -> None:
        save_checkpoint(path, ALGO, self.checkpoint(full=True))

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> MAML:
        """A MAML from a checkpoint file or a run directory (best.pt, else last.pt); only
        the fields in RESUMABLE may be overridden."""
        fixed = sorted(set(overrides) - RESUMABLE)
        if fixed:
            raise UserError(f"a loaded run keeps its config; cannot change {', '.join(fixed)}")
        data = load_checkpoint(path, ALGO)
        try:
            config = build(MAMLConfig, data["config"][ALGO], overrides)
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} has an unreadable config ({exc})") from None
        agent = cls.__new__(cls)
        agent._setup(config)
        try:
            agent.policy.load_state_dict(data["weights"])
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {path} does not fit the policy of its config "
                                  f"({str(exc).splitlines()[0]})") from None
        agent.batch = int(data["step"])
        agent.best_after = float(data.get("best_after", -math.inf))
        state = data.get("state")
        if state is not None:
            set_generator_state(agent.task_rng, state["task_rng"])
            agent.generator.set_state(state["generator"])
            set_rng_states(state["global_rng"])
        return agent

    @classmethod
    def resume(cls, run_dir: str | Path, **overrides: Any) -> MAML:
        """The run in `run_dir` at its last checkpoint, ready to `learn` on."""
        run = RunDir.open(run_dir)
        algo = run.config().get("algo")
        if algo != ALGO:
            raise UserError(f"{run_dir} is a {algo} run, not a maml run")
        last = run.checkpoint("last")
        if not last.exists():
            raise CheckpointError(f"{run_dir} has no checkpoint to resume from ({last} is missing)")
        agent = cls.load(last, **overrides)
        agent.run = run
        return agent

    def close(self) -> None:
        for env in self._samplers.values():
            env.close()
        self._samplers.clear()
        self.family.close()

    def __enter__(self) -> MAML:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def step_sizes(fast_lr: float | Sequence[float], steps: int) -> list[float]:
    """One positive step size per inner step: a number for all of them, or a sequence whose
    last entry repeats; UserError for an empty sequence or a step size <= 0."""
    lrs = [float(fast_lr)] if isinstance(fast_lr, (int, float)) else [float(x) for x in fast_lr]
    if not lrs or not all(lr > 0 for lr in lrs):
        raise UserError(f"fast_lr must be positive (one number, or one per step), got {fast_lr}")
    return (lrs + lrs[-1:] * steps)[:max(steps, 1)]
