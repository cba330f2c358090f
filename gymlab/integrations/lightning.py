"""gymlab's DQN as a PyTorch Lightning module, for training with `lightning.Trainer`.

Nothing of the algorithm is written here. The module owns a `gymlab.DQN` agent and hands
Lightning its pieces: the Q-network and target network (submodules, so `state_dict`, devices
and precision work), the agent's Adam optimizer, `DQN.replay_batches` (the agent's own loop:
epsilon-greedy acting, replay storage, target updates) as the training data, and
`DQN.td_loss` in `training_step`, which takes each gradient step where `DQN.learn` does, so
the same seed gives the same weights on both paths.

    module = DQNModule("CartPole-v1", seed=0, total_steps=20_000)
    lightning.Trainer(max_epochs=-1, callbacks=[ModelCheckpoint(monitor="eval/return_mean",
                      mode="max")]).fit(module)
    DQN.from_lightning_checkpoint(path).act(obs)    # or: gymlab eval path.ckpt
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Iterator
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from gymlab.core.errors import UserError

INSTALL_HINT = "pip install -c constraints.txt -e '.[lightning]'"
try:
    import lightning as L
except ImportError:
    raise UserError(f"the Lightning integration needs PyTorch Lightning: {INSTALL_HINT}") from None

from gymlab.agents.dqn import DQN  # noqa: E402
from gymlab.core.checkpoints import CHECKPOINT_FORMAT  # noqa: E402
from gymlab.core.evaluation import Evaluator  # noqa: E402


class ReplayDataset(IterableDataset):
    """The replay buffer as Lightning's training data. Each item is a group of up to `group`
    minibatches of (obs, actions, rewards, next_obs, terminated), drawn lazily: iterating a
    group plays the agent up to its next update and samples that update's minibatch, so the
    agent always acts with the network of the latest gradient step. `training_step` takes
    one gradient step per minibatch. Use `DataLoader(batch_size=None)`: collating would cost
    more than the gradient step.

    A replay stream has no natural length, so an epoch is `length` minibatches (the last
    group of an epoch may be smaller), and each epoch goes on from where the previous one
    stopped. With the length known, Lightning fetches no item ahead.
    """

    def __init__(self, batches: Iterator[tuple[Tensor, ...]], length: int, group: int) -> None:
        self.batches, self.length, self.group = batches, length, group

    def __len__(self) -> int:
        return -(-self.length // self.group)

    def __iter__(self) -> Iterator[Iterator[tuple[Tensor, ...]]]:
        for start in range(0, self.length, self.group):
            yield itertools.islice(self.batches, min(self.group, self.length - start))


class DQNModule(L.LightningModule):
    """gymlab's DQN as a LightningModule.

    Keywords are those of `gymlab.DQN` (any DQNConfig or RunConfig field), resolved the same
    way (defaults < tuned table for the environment < yours). Of the run options, Lightning
    takes over the run directory, logger, progress bar and checkpoints; `total_steps`,
    `stop_reward`, `eval_episodes`, `eval_every` (the epoch length) and `log_every` are used.

    Each epoch is `updates_per_epoch` gradient steps (default: those of `eval_every`
    environment steps) and ends with a validation: `eval_episodes` greedy episodes through
    gymlab's Evaluator, logged as eval/return_mean for ModelCheckpoint / EarlyStopping. The
    module stops the Trainer at `total_steps` environment steps, or at `stop_reward`; pass
    `max_epochs=-1` so that Lightning's default of 1,000 epochs does not stop it first.
    Training scalars (the keys of progress.jsonl) go to Lightning's loggers every `log_every`
    environment steps, with the environment step as their x axis.

    One Lightning batch (one `training_step`, one round of batch hooks and callbacks) is
    `updates_per_batch` gradient steps, with the environment steps between them: Lightning's
    loop, hooks and callbacks cost a sizeable share of a small update each batch, so grouping
    updates is what keeps it near gymlab's own loop (benchmarks/lightning_dqn.py).
    `trainer.global_step` still counts gradient steps (optimizer steps); `max_steps` and
    per-batch callbacks see groups.
    """

    def __init__(self, env: str = "CartPole-v1", updates_per_epoch: int | None = None,
                 updates_per_batch: int = 8, **overrides: Any) -> None:
        super().__init__()
        sizes = {"updates_per_batch": updates_per_batch}
        if updates_per_epoch is not None:
            sizes["updates_per_epoch"] = updates_per_epoch
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        self.save_hyperparameters()
        # training_step takes DQN's gradient steps itself, several per Lightning batch
        self.automatic_optimization = False
        self.agent = DQN(env, **overrides)
        self.agent.optimizer = torch_adam(self.agent.optimizer)
        self.q_net, self.target_net = self.agent.q_net, self.agent.target_net
        cfg, run = self.agent.config, self.agent.run_config
        if updates_per_epoch is None:
            iterations = max(cfg.train_freq // cfg.num_envs, 1)  # as in DQN.replay_batches
            updates = (run.eval_every or 1_000) / (iterations * cfg.num_envs)
            updates_per_epoch = max(round(updates), 1) * cfg.gradient_steps
        self.updates_per_epoch, self.updates_per_batch = updates_per_epoch, updates_per_batch
        self.log_hooks = LoggerHooks(self, run.log_every)
        self.solved_step: int | None = None
        self._batches: Iterator[tuple[Tensor, ...]] | None = None
        self._updates_to_go = 0
        self._evaluator: Evaluator | None = None

    # -- data ---------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        if self._batches is None:  # one stream for the whole fit, across epochs
            self._batches = self.agent.replay_batches(self.log_hooks)
            self._updates_to_go = self._updates_left()
            if self._updates_to_go == 0:
                raise UserError(f"no gradient step to take before total_steps "
                                f"{self.agent.run_config.total_steps} (learning_starts "
                                f"{self.agent.config.learning_starts})")
        # the agent acts in this process: worker processes would fill copies of the buffer
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*`IterableDataset` has `__len__` defined.*")
        # the module logs every log_every environment steps itself, not every n batches
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        dataset = ReplayDataset(self._batches, self.updates_per_epoch, self.updates_per_batch)
        return DataLoader(dataset, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader([0], batch_size=None)  # one validation step: one evaluation

    # -- optimisation: gymlab's loss, optimizer and clipping ----------------------------------
    def training_step(self, batch: Iterator[tuple[Tensor, ...]], batch_idx: int) -> Tensor:
        optimizer, device = self.optimizers(), self.device
        loss = None
        for minibatch in batch:  # each draw plays the agent up to the update
            loss = self.update(optimizer, tuple(t.to(device) for t in minibatch))
            self._updates_to_go -= 1
        if loss is None:
            raise RuntimeError("DQN.replay_batches yielded fewer minibatches than counted")
        return loss

    def update(self, optimizer: Any, minibatch: tuple[Tensor, ...]) -> Tensor:
        """One gradient step: DQN._update's, in Lightning's manual-optimization form
        (`manual_backward` and the wrapped optimizer keep precision plugins and strategies
        working; Lightning's automatic optimization would add a closure and five more hooks
        per step)."""
        loss = self.agent.td_loss(*minibatch)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.agent.clip_gradients()  # max_grad_norm of the config
        optimizer.step()
        return loss

    def configure_optimizers(self) -> Any:
        return self.agent.optimizer

    def _updates_left(self) -> int:
        """The minibatches DQN.replay_batches yields after the agent's current iteration."""
        cfg, n = self.agent.config, self.agent.config.num_envs
        every = max(cfg.train_freq // n, 1)
        last = -(-self.agent.run_config.total_steps // n)  # the run's last iteration
        done = max(self.agent.step // n, cfg.learning_starts // n)
        return max(last // every - done // every, 0) * cfg.gradient_steps

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._updates_to_go == 0:
            # play the steps after the last update, then stop: Lightning validates first
            for _ in self._batches:  # type: ignore[union-attr]
                raise RuntimeError("DQN.replay_batches yielded more minibatches than counted")
            self.trainer.should_stop = True

    def on_train_epoch_end(self) -> None:
        if self.agent.step >= self.agent.run_config.total_steps:
            self.trainer.should_stop = True

    # -- evaluation ---------------------------------------------------------------------------
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        run = self.agent.run_config
        if self._evaluator is None:  # seeded as a gymlab Session seeds its own
            self._evaluator = Evaluator(run.env, run.eval_episodes, run.seed + 1_000_000,
                                        run.env_kwargs)
        result = self._evaluator(self.agent.batch_policy())
        scalars = {"eval/return_mean": result.mean, "eval/return_std": result.std}
        self.log_dict(scalars, batch_size=1, logger=False)  # for callbacks' `monitor`
        if self.trainer.sanity_checking:
            return
        self.log_hooks.send(self.agent.step, scalars)
        if run.stop_reward is not None and result.mean >= run.stop_reward:
            self.solved_step = self.agent.step
            self.trainer.should_stop = True

    def on_fit_end(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()
            self._evaluator = None

    # -- checkpoints --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the file is also a full gymlab checkpoint (weights, config, step, replay buffer,
        # generators, environments): DQN.load, gymlab eval and gymlab record read it as they
        # read last.pt, and fit(ckpt_path=...) continues with the saved buffer
        checkpoint.update(format=CHECKPOINT_FORMAT, algo=DQN.algo,
                          **self.agent.checkpoint(full=True))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("format") != CHECKPOINT_FORMAT or checkpoint.get("algo") != DQN.algo:
            raise UserError("this Lightning checkpoint was not written by DQNModule")
        self.agent.step = int(checkpoint["step"])
        self.agent._load(checkpoint["weights"], checkpoint.get("state"))
        every = self.log_hooks.log_every
        self.log_hooks.next_log = (self.agent.step // every + 1) * every


def torch_adam(adam: Any) -> Any:
    """A torch.optim.Adam with the settings and state of gymlab's Adam (core.optim), which
    Lightning's strategies and precision plugins need to wrap. Made with the module, so
    torch.optim's one-time imports are not part of fitting."""
    import torch

    group = adam.param_groups[0]
    optimizer = torch.optim.Adam(group["params"], lr=group["lr"], eps=group["eps"],
                                 betas=group["betas"], fused=group["fused"])
    optimizer.load_state_dict(adam.state_dict())
    return optimizer


class LoggerHooks:
    """What DQN.replay_batches reports, sent to Lightning's loggers every `log_every`
    environment steps: the scalars of gymlab's progress.jsonl, with the episodes finished
    since the last record averaged (episode/return, episode/length, episode/count).

    Writing to the loggers directly, at an interval, avoids `self.log` on every step, which
    costs more per scalar than a whole small DQN update."""

    stop = False  # the Trainer decides when to stop; the loop ends at total_steps

    def __init__(self, module: L.LightningModule, log_every: int) -> None:
        self.module, self.log_every = module, log_every
        self.next_log = log_every
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self._clock: tuple[float, int] | None = None
        self.records: list[dict[str, float]] = []  # the last few, for tests and callbacks

    def episode(self, step: int, episode_return: float, length: int) -> None:
        self.returns.append(episode_return)
        self.lengths.append(length)

    def log_due(self, step: int) -> bool:
        return step >= self.next_log

    def log(self, step: int, scalars: dict[str, float]) -> None:
        now = time.perf_counter()
        t0, s0 = self._clock or (now, 0)
        self._clock = (now, step)
        record = dict(scalars)
        if self.returns:
            record["episode/return"] = sum(self.returns) / len(self.returns)
            record["episode/length"] = sum(self.lengths) / len(self.lengths)
            record["episode/count"] = len(self.returns)
            self.returns, self.lengths = [], []
        if now > t0:
            record["time/steps_per_second"] = (step - s0) / (now - t0)
        self.send(step, record)
        while self.next_log <= step:
            self.next_log += self.log_every

    def send(self, step: int, scalars: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in scalars.items() if math.isfinite(v)}
        self.records = [*self.records[-99:], {"step": step, **clean}]
        for logger in self.module.loggers:
            logger.log_metrics(clean, step=step)

    def on_step(self, step: int) -> None:
        pass
