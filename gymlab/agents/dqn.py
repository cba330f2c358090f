"""Deep Q-Network (Mnih et al., 2015) with Double DQN (van Hasselt et al., 2016) as an option.

MultiDiscrete actions get one Q-head per action dimension (Branching Q-networks, Tavakoli et
al., 2018): each head scores its own dimension, and all heads share one TD target built from
the mean of the heads' next-state values. With one dimension this is plain DQN.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from gymlab.agents.base import Agent
from gymlab.core.buffers import ReplayBuffer
from gymlab.core.config import require
from gymlab.core.envs import EnvPool
from gymlab.core.networks import Activation, mlp
from gymlab.core.optim import Adam
from gymlab.core.seeding import generator_state, set_generator_state
from gymlab.core.session import LoopHooks, NonFiniteLoss, Session
from gymlab.core.spaces import discrete_branches


@dataclass(frozen=True)
class DQNConfig:
    """DQN hyperparameters (names as in Stable-Baselines3, so its tuned values carry over).

    The defaults serve environments without a tuned entry: benchmarks/dqn_defaults.py chose
    them among a few candidates on tuning tasks and reports them on held-out ones."""

    learning_rate: float = 6.3e-4
    """Adam step size."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over total_steps."""
    buffer_size: int = 100_000
    """Replay memory capacity, in transitions."""
    learning_starts: int = 1_000
    """Steps of uniformly random actions before the first update (replay start size)."""
    batch_size: int = 128
    """Transitions per gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 1.0
    """Target-network update coefficient: 1 copies the online network, < 1 is Polyak averaging."""
    target_update_interval: int = 250
    """Environment steps between target-network updates."""
    train_freq: int = 4
    """Environment steps between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase."""
    exploration_fraction: float = 0.1
    """Fraction of total_steps over which epsilon decays linearly."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start of the decay."""
    exploration_final_eps: float = 0.05
    """Epsilon after the decay."""
    double_q: bool = True
    """Double DQN: the online network picks the next action, the target network scores it."""
    loss: Literal["huber", "mse"] = "huber"
    """TD loss: huber (smooth L1) or mse."""
    max_grad_norm: float | None = 10.0
    """Clip the gradient's global norm to this (none: no clipping)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden layer sizes of the Q-network."""
    activation: Activation = "relu"
    """Activation between hidden layers."""
    num_envs: int = 1
    """Environments stepped in parallel to collect experience."""
    save_replay_buffer: bool = True
    """Keep the replay buffer in checkpoints (off for huge buffers: a resumed run then starts
    with an empty buffer and is no longer step-for-step identical)."""

    def __post_init__(self) -> None:
        for name in ("buffer_size", "batch_size", "target_update_interval", "train_freq",
                     "gradient_steps", "num_envs"):
            require(getattr(self, name) > 0, f"{name} must be positive, got {getattr(self, name)}")
        require(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        require(self.learning_starts >= 0,
                f"learning_starts must be >= 0, got {self.learning_starts}")
        require(0 <= self.gamma <= 1, f"gamma must be in [0, 1], got {self.gamma}")
        require(0 < self.tau <= 1, f"tau must be in (0, 1], got {self.tau}")
        require(0 <= self.exploration_fraction <= 1,
                f"exploration_fraction must be in [0, 1], got {self.exploration_fraction}")
        for name in ("exploration_initial_eps", "exploration_final_eps"):
            require(0 <= getattr(self, name) <= 1, f"{name} must be in [0, 1]")
        require(self.loss in ("huber", "mse"), f"loss must be huber or mse, got {self.loss!r}")
        require(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm must be > 0")
        require(all(h > 0 for h in self.hidden_sizes), "hidden_sizes must be positive")


class DQN(Agent):
    """DQN for Discrete and MultiDiscrete action spaces.

    >>> agent = DQN("CartPole-v1", seed=0).learn(50_000)
    >>> action = agent.act(obs)
    """

    algo = "dqn"
    Config = DQNConfig
    config: DQNConfig
    TUNED: ClassVar[dict[str, dict[str, Any]]] = {
        "CartPole-v1": {  # gymlab's own tuning for time to solve (benchmarks/cartpole_dqn.py)
            "total_steps": 100_000, "stop_reward": 475.0,
            "learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000,
            "learning_starts": 1_000, "gamma": 0.99, "target_update_interval": 100,
            "train_freq": 4, "gradient_steps": 1, "exploration_fraction": 0.05,
            "exploration_final_eps": 0.04, "double_q": True, "hidden_sizes": (128, 128),
            "max_grad_norm": None,
        },
        "Acrobot-v1": {  # zoo
            "total_steps": 100_000, "stop_reward": -100.0,
            "learning_rate": 6.3e-4, "batch_size": 128, "buffer_size": 50_000,
            "learning_starts": 0, "gamma": 0.99, "target_update_interval": 250,
            "train_freq": 4, "gradient_steps": 4, "exploration_fraction": 0.12,
            "exploration_final_eps": 0.1, "hidden_sizes": (256, 256),
            "double_q": False, "max_grad_norm": None,
        },
        "MountainCar-v0": {  # zoo
            "total_steps": 120_000, "stop_reward": -110.0,
            "learning_rate": 4e-3, "batch_size": 128, "buffer_size": 10_000,
            "learning_starts": 1_000, "gamma": 0.98, "target_update_interval": 600,
            "train_freq": 16, "gradient_steps": 8, "exploration_fraction": 0.2,
            "exploration_final_eps": 0.07, "hidden_sizes": (256, 256),
            "double_q": False, "max_grad_norm": None,
        },
        "LunarLander-v3": {  # zoo
            "total_steps": 100_000, "stop_reward": 200.0,
            "learning_rate": 6.3e-4, "batch_size": 128, "buffer_size": 50_000,
            "learning_starts": 0, "gamma": 0.99, "target_update_interval": 250,
            "train_freq": 4, "gradient_steps": 4, "exploration_fraction": 0.12,
            "exploration_final_eps": 0.1, "hidden_sizes": (256, 256),
            "double_q": False, "max_grad_norm": None,
        },
    }
    """Tuned values per environment. Entries marked zoo are RL-Baselines3-Zoo's (its
    gradient_steps=-1 written out as train_freq). Each entry names every value its tuning
    differs from the defaults in, so a change of defaults leaves tuned runs as they were."""

    def _build(self) -> None:
        cfg, seed = self.config, self.run_config.seed
        self.envs = EnvPool(self.run_config.env, cfg.num_envs, seed, self.run_config.env_kwargs)
        self.branches = discrete_branches(self.envs.action_space, "DQN")
        self.encoder = self.envs.encoder
        self.q_net = mlp(self.encoder.size, cfg.hidden_sizes, cfg.activation, sum(self.branches))
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        # fused Adam: one kernel for all parameters, the cheapest step on small CPU networks
        self.optimizer = Adam(self.q_net.parameters(), lr=cfg.learning_rate, fused=True)
        self.buffer = ReplayBuffer(cfg.buffer_size, self.encoder.size, len(self.branches),
                                   seed + 1)
        self.rng = np.random.default_rng(seed + 2)  # epsilon-greedy draws
        self.last_loss = self.last_q = math.nan  # of the latest minibatch, for logging
        self.envs.reset()

    # -- acting -------------------------------------------------------------------------------
    def _greedy(self, obs: np.ndarray) -> np.ndarray:
        """Argmax of each head, [B, D], for encoded observations [B, n]."""
        with torch.inference_mode():
            device = self.q_net[0].weight.device  # moved by Lightning's Trainer(accelerator=)
            q = self.q_net(torch.from_numpy(obs).to(device))
            return self._argmax_per_head(q).cpu().numpy()

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        return actions[:, 0] if len(self.branches) == 1 else actions

    def batch_policy(self) -> Any:
        return lambda obs: self._env_actions(self._greedy(obs))

    def act(self, obs: Any) -> Any:
        action = self._greedy(self.encoder(obs)[None])[0]
        return int(action[0]) if len(self.branches) == 1 else action

    def epsilon(self) -> float:
        cfg = self.config
        decay_steps = cfg.exploration_fraction * self.run_config.total_steps
        fraction = min(self.step / decay_steps, 1.0) if decay_steps > 0 else 1.0
        return cfg.exploration_initial_eps + fraction * (
            cfg.exploration_final_eps - cfg.exploration_initial_eps)

    def _explore(self, obs: np.ndarray, epsilon: float) -> np.ndarray:
        """Epsilon-greedy actions [N, D]; only random before `learning_starts`."""
        n = len(obs)
        random_actions = self.rng.integers(0, self.branches, size=(n, len(self.branches)))
        if self.step < self.config.learning_starts:
            return random_actions
        explore = self.rng.random(n) < epsilon
        if explore.all():
            return random_actions
        return np.where(explore[:, None], random_actions, self._greedy(obs))

    # -- learning -----------------------------------------------------------------------------
    def _learn(self, session: Session) -> None:
        for batch in self.replay_batches(session):
            self._update(*batch)

    def replay_batches(self, session: LoopHooks) -> Iterator[tuple[torch.Tensor, ...]]:
        """The DQN loop: act, store, and yield each replayed minibatch to fit, until
        total_steps or `session.stop`. The caller takes the gradient step on a batch
        (`_update`, or Lightning's `training_step`) before it asks for the next one, so both
        training paths run this one loop and get the same numbers for a seed."""
        cfg, total = self.config, self.run_config.total_steps
        n = cfg.num_envs
        train_every = max(cfg.train_freq // n, 1)
        target_every = max(cfg.target_update_interval // n, 1)
        while self.step < total and not session.stop:
            # 1. act epsilon-greedily and store the transition
            obs = self.envs.obs.copy()
            epsilon = self.epsilon()
            actions = self._explore(obs, epsilon)
            next_obs, rewards, terminated, _, finished = self.envs.step(self._env_actions(actions))
            self.buffer.add(obs, actions, rewards, next_obs, terminated)
            self.step += n
            for episode_return, length in finished:
                session.episode(self.step, episode_return, length)

            # 2. fit Q(s, a) to r + gamma * max_a' Q_target(s', a') on replayed minibatches
            iteration = self.step // n
            if self.step > cfg.learning_starts and iteration % train_every == 0:
                if cfg.anneal_lr:
                    self.optimizer.param_groups[0]["lr"] = cfg.learning_rate * (
                        1.0 - self.step / total)
                for _ in range(cfg.gradient_steps):
                    yield self.buffer.sample(cfg.batch_size)

            # 3. move the target network towards the online network
            if iteration % target_every == 0:
                self._update_target()

            if session.log_due(self.step):
                lr = self.optimizer.param_groups[0]["lr"]
                session.log(self.step, {"train/loss": self.last_loss, "train/q_mean": self.last_q,
                                        "train/epsilon": epsilon, "train/learning_rate": lr})
            session.on_step(self.step)

    def td_loss(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
                next_obs: torch.Tensor, terminated: torch.Tensor) -> torch.Tensor:
        """The TD loss of one minibatch; keeps its value and the mean Q for logging."""
        cfg = self.config
        with torch.no_grad():
            next_q = self.target_net(next_obs)
            if cfg.double_q:
                best = self._argmax_per_head(self.q_net(next_obs))
                next_value = self._gather_per_head(next_q, best)
            else:
                next_value = self._max_per_head(next_q)
            # one target for every head: the mean of the heads' next-state values
            td_target = rewards + cfg.gamma * (1.0 - terminated) * next_value.mean(1)
        q = self._gather_per_head(self.q_net(obs), actions)
        target = td_target.unsqueeze(1).expand_as(q)
        loss = F.smooth_l1_loss(q, target) if cfg.loss == "huber" else F.mse_loss(q, target)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise NonFiniteLoss(f"the TD loss became {loss_value}")
        self.last_loss, self.last_q = loss_value, float(q.detach().mean())
        return loss

    def clip_gradients(self) -> None:
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.q_net.parameters(), self.config.max_grad_norm,
                                           foreach=True)

    def _update(self, *batch: torch.Tensor) -> tuple[float, float]:
        """One gradient step on a minibatch (obs, actions, rewards, next_obs, terminated)."""
        loss = self.td_loss(*batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.clip_gradients()
        self.optimizer.step()
        return self.last_loss, self.last_q

    # Q-values of all heads sit side by side in one [B, sum(branches)] tensor.
    def _heads(self, q: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (q,) if len(self.branches) == 1 else q.split(self.branches, 1)

    def _max_per_head(self, q: torch.Tensor) -> torch.Tensor:
        return torch.stack([h.max(1).values for h in self._heads(q)], 1)

    def _argmax_per_head(self, q: torch.Tensor) -> torch.Tensor:
        return torch.stack([h.argmax(1) for h in self._heads(q)], 1)

    def _gather_per_head(self, q: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if len(self.branches) == 1:
            return q.gather(1, actions)
        return torch.cat([h.gather(1, actions[:, i : i + 1])
                          for i, h in enumerate(self._heads(q))], 1)

    def _update_target(self) -> None:
        tau = self.config.tau
        with torch.no_grad():
            if tau == 1.0:
                for t, p in zip(self.target_net.parameters(), self.q_net.parameters()):
                    t.copy_(p)
            else:
                for t, p in zip(self.target_net.parameters(), self.q_net.parameters()):
                    t.lerp_(p, tau)

    @classmethod
    def from_lightning_checkpoint(cls, path: str | Path) -> DQN:
        """The agent of a checkpoint that Lightning wrote while training
        `gymlab.integrations.lightning.DQNModule` (ModelCheckpoint's .ckpt): the module puts
        gymlab's weights, config and step into it, so this is `load`, and `gymlab eval` and
        `gymlab record` take such a file too."""
        return cls.load(path)  # type: ignore[return-value]

    # -- state --------------------------------------------------------------------------------
    def _weights(self) -> dict[str, Any]:
        return {"q_net": self.q_net.state_dict()}

    def _training_state(self) -> dict[str, Any]:
        return {
            "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": self.buffer.state_dict(with_data=self.config.save_replay_buffer),
            "envs": self.envs.state_dict(),
            "rng": generator_state(self.rng),
        }

    def _load(self, weights: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.q_net.load_state_dict(weights["q_net"])
        if state is None:
            self.target_net.load_state_dict(weights["q_net"])
            return
        self.target_net.load_state_dict(state["target_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        self.envs.load_state_dict(state["envs"])
        set_generator_state(self.rng, state["rng"])
