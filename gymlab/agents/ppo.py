"""Proximal Policy Optimization (Schulman et al., 2017) with GAE (Schulman et al., 2016).

Hyperparameter names follow CleanRL's ppo.py. Discrete, MultiDiscrete (independent
categoricals) and Box (diagonal Gaussian, state-independent log-std; the environment gets
actions clipped to its bounds, the log-probability is that of the unclipped sample) actions;
Box, Discrete, MultiDiscrete and Dict observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from gymlab.agents.base import Agent
from gymlab.core.config import require
from gymlab.core.distributions import DiagGaussian, action_distribution, orthogonal_init
from gymlab.core.envs import EnvPool
from gymlab.core.networks import Activation, mlp
from gymlab.core.normalize import ObsNormalizer, RewardScaler
from gymlab.core.optim import Adam
from gymlab.core.seeding import generator_state, set_generator_state
from gymlab.core.session import NonFiniteLoss, Session


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (names as in CleanRL)."""

    learning_rate: float = 3e-4
    """Adam step size."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over total_steps."""
    num_envs: int = 8
    """Environments stepped in parallel."""
    num_steps: int = 128
    """Steps per environment in each rollout (rollout size: num_envs * num_steps)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """lambda of generalized advantage estimation."""
    num_minibatches: int = 4
    """Minibatches each rollout is split into."""
    update_epochs: int = 4
    """Passes over each rollout."""
    norm_adv: bool = True
    """Normalise advantages within each minibatch."""
    clip_coef: float = 0.2
    """Surrogate clipping coefficient epsilon."""
    anneal_clip: bool = False
    """Decay clip_coef linearly to 0 over total_steps."""
    clip_vloss: bool = True
    """Clip the value loss around the rollout's values, as the policy is clipped."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float | None = 0.5
    """Clip the gradient's global norm to this (none: no clipping)."""
    target_kl: float | None = None
    """Stop a rollout's epochs early once the approximate KL exceeds this (none: never)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the actor and of the critic (separate networks)."""
    activation: Activation = "tanh"
    """Activation between hidden layers; linear makes the networks linear."""
    log_std_init: float = 0.0
    """Initial log standard deviation of Gaussian (Box) actions."""
    normalize_obs: bool = False
    """Running mean/std observation normalisation (statistics saved and used at evaluation)."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "num_steps", "num_minibatches", "update_epochs"):
            require(getattr(self, name) > 0, f"{name} must be positive, got {getattr(self, name)}")
        require(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        require(0 <= self.gamma <= 1, f"gamma must be in [0, 1], got {self.gamma}")
        require(0 <= self.gae_lambda <= 1, f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        require(self.clip_coef > 0, f"clip_coef must be positive, got {self.clip_coef}")
        require(self.num_envs * self.num_steps >= self.num_minibatches,
                "num_minibatches cannot exceed the rollout size num_envs * num_steps")
        require(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm must be > 0")
        require(self.target_kl is None or self.target_kl > 0, "target_kl must be > 0")
        require(all(h > 0 for h in self.hidden_sizes), "hidden_sizes must be positive")


class PPO(Agent):
    """PPO for Discrete, MultiDiscrete and Box actions.

    >>> agent = PPO("CartPole-v1", seed=0).learn()
    >>> agent = PPO.load("runs/ppo-CartPole-v1-.../checkpoints/best.pt"); agent.act(obs)
    """

    algo = "ppo"
    Config = PPOConfig
    config: PPOConfig
    TUNED: ClassVar[dict[str, dict[str, Any]]] = {
        "CartPole-v1": {  # gymlab's own tuning for time to solve (benchmarks/cartpole_ppo.py)
            "total_steps": 200_000, "stop_reward": 475.0,
            "num_envs": 16, "num_steps": 64, "num_minibatches": 4, "update_epochs": 2,
            "learning_rate": 2e-3, "gamma": 0.995, "gae_lambda": 0.95, "clip_vloss": False,
            "normalize_obs": True, "normalize_reward": True,
        },
        # Below, RL-Zoo's PPO values: its batch_size 64 written as num_minibatches, a constant
        # learning rate as anneal_lr False, SB3's unclipped value loss as clip_vloss False
        "Acrobot-v1": {
            "total_steps": 200_000, "stop_reward": -100.0,
            "num_envs": 16, "num_steps": 256, "num_minibatches": 64, "update_epochs": 4,
            "learning_rate": 3e-4, "anneal_lr": False, "gamma": 0.99, "gae_lambda": 0.94,
            "clip_vloss": False, "normalize_obs": True, "normalize_reward": True,
        },
        "Pendulum-v1": {  # no gSDE in gymlab: gamma 0.95 (zoo 0.9) and lr annealed instead
            "total_steps": 200_000, "stop_reward": -200.0,
            "num_envs": 4, "num_steps": 1024, "num_minibatches": 64, "update_epochs": 10,
            "learning_rate": 1e-3, "gamma": 0.95, "gae_lambda": 0.95, "clip_vloss": False,
        },
        "LunarLander-v3": {  # the zoo's LunarLander-v2 entry
            "total_steps": 1_000_000, "stop_reward": 200.0,
            "num_envs": 16, "num_steps": 1024, "num_minibatches": 256, "update_epochs": 4,
            "learning_rate": 3e-4, "anneal_lr": False, "gamma": 0.999, "gae_lambda": 0.98,
            "ent_coef": 0.01, "clip_vloss": False,
        },
    }
    """Tuned values per environment: gymlab's own tuning for time to solve on CartPole
    (benchmarks/cartpole_ppo.py), else RL-Zoo's, its batch_size is written as num_minibatches =
    num_envs * num_steps / batch_size."""

    def _build(self) -> None:
        cfg, seed = self.config, self.run_config.seed
        self.envs = EnvPool(self.run_config.env, cfg.num_envs, seed, self.run_config.env_kwargs)
        space = self.envs.action_space
        self.dist = action_distribution(space, "PPO")
        self.encoder = self.envs.encoder
        n = self.encoder.size
        self.actor = orthogonal_init(mlp(n, cfg.hidden_sizes, cfg.activation, self.dist.n_outputs),
                                     math.sqrt(2))
        self.critic = orthogonal_init(mlp(n, cfg.hidden_sizes, cfg.activation, 1), math.sqrt(2))
        orthogonal_init(self.actor[-1], 0.01)  # near-uniform initial policy
        orthogonal_init(self.critic[-1], 1.0)
        self.log_std = nn.Parameter(torch.full((self.dist.n_outputs,), cfg.log_std_init))
        params = [*self.actor.parameters(), *self.critic.parameters()]
        if isinstance(self.dist, DiagGaussian):
            params.append(self.log_std)
            self.low = space.low.reshape(-1).astype(np.float32)  # type: ignore[union-attr]
            self.high = space.high.reshape(-1).astype(np.float32)  # type: ignore[union-attr]
        self.optimizer = Adam(params, lr=cfg.learning_rate, eps=1e-5, fused=True)
        self.obs_norm = ObsNormalizer(n, cfg.normalize_obs)
        self.reward_scale = RewardScaler(cfg.num_envs, cfg.gamma, cfg.normalize_reward)
        self.rng = np.random.default_rng(seed + 3)  # minibatch shuffling
        self.envs.reset()

    # -- acting -------------------------------------------------------------------------------
    def _policy(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.actor(obs)
        return (out, self.log_std) if isinstance(self.dist, DiagGaussian) else (out,)

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        if isinstance(self.dist, DiagGaussian):
            return np.clip(actions, self.low, self.high).reshape(
                (len(actions), *self.envs.action_space.shape))
        return actions[:, 0] if len(self.dist.branches) == 1 else actions

    def batch_policy(self) -> Any:
        def act(obs: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                x = torch.from_numpy(self.obs_norm(obs))
                return self._env_actions(self.dist.mode(*self._policy(x)).numpy())
        return act

    def act(self, obs: Any) -> Any:
        action = self.batch_policy()(self.encoder(obs)[None])[0]
        if isinstance(self.dist, DiagGaussian) or len(self.dist.branches) > 1:
            return action
        return int(action)

    # -- learning -----------------------------------------------------------------------------
    def _learn(self, session: Session) -> None:
        cfg, total = self.config, self.run_config.total_steps
        n_envs, n_steps = cfg.num_envs, cfg.num_steps
        batch_size = n_envs * n_steps
        minibatch_size = batch_size // cfg.num_minibatches
        continuous = isinstance(self.dist, DiagGaussian)
        act_shape = (self.dist.size,) if continuous else (len(self.dist.branches),)
        obs = torch.zeros((n_steps, n_envs, self.encoder.size))
        actions = torch.zeros((n_steps, n_envs, *act_shape),
                              dtype=torch.float32 if continuous else torch.int64)
        logprobs, values = torch.zeros((n_steps, n_envs)), torch.zeros((n_steps, n_envs))
        rewards, dones = np.zeros((n_steps, n_envs), np.float32), np.zeros((n_steps, n_envs))

        while self.step < total and not session.stop:
            progress_left = 1.0 - self.step / total
            if cfg.anneal_lr:
                self.optimizer.param_groups[0]["lr"] = cfg.learning_rate * progress_left
            clip_coef = cfg.clip_coef * (progress_left if cfg.anneal_clip else 1.0)

            # 1. collect a rollout of num_steps from every environment
            for t in range(n_steps):
                obs[t] = torch.from_numpy(self.obs_norm(self.envs.obs, update=True))
                with torch.no_grad():
                    dist_args = self._policy(obs[t])
                    action = self.dist.sample(*dist_args)
                    logprobs[t] = self.dist.log_prob(*dist_args, action)
                    values[t] = self.critic(obs[t]).squeeze(-1)
                actions[t] = action
                final_obs, reward, terminated, truncated, finished = self.envs.step(
                    self._env_actions(action.numpy()))
                done = terminated | truncated
                reward = self.reward_scale(reward, done)
                if truncated.any():  # a time limit is not a terminal state: bootstrap from it
                    cut = np.flatnonzero(truncated & ~terminated)
                    with torch.no_grad():
                        tail = self.critic(torch.from_numpy(self.obs_norm(final_obs[cut])))
                    reward[cut] += cfg.gamma * tail.squeeze(-1).numpy()
                rewards[t], dones[t] = reward, done
                self.step += n_envs
                for episode_return, length in finished:
                    session.episode(self.step, episode_return, length)

            # 2. advantages by GAE(lambda), returns as advantages + values
            with torch.no_grad():
                next_value = self.critic(torch.from_numpy(self.obs_norm(self.envs.obs)))
            advantages = _gae(rewards, values.numpy(), dones, next_value.squeeze(-1).numpy(),
                              cfg.gamma, cfg.gae_lambda)
            returns = advantages + values

            # 3. optimise the clipped surrogate for update_epochs over shuffled minibatches
            b_obs, b_actions = obs.reshape(batch_size, -1), actions.reshape(batch_size, *act_shape)
            b_logprobs, b_values = logprobs.reshape(-1), values.reshape(-1)
            b_advantages, b_returns = advantages.reshape(-1), returns.reshape(-1)
            clipfracs = []
            for _ in range(cfg.update_epochs):
                order = torch.from_numpy(self.rng.permutation(batch_size))
                for start in range(0, batch_size - minibatch_size + 1, minibatch_size):
                    mb = order[start : start + minibatch_size]
                    dist_args = self._policy(b_obs[mb])
                    newlogprob = self.dist.log_prob(*dist_args, b_actions[mb])
                    entropy = (self.dist.entropy(self.log_std, len(mb)) if continuous
                               else self.dist.entropy(dist_args[0]))
                    newvalue = self.critic(b_obs[mb]).squeeze(-1)
                    logratio = newlogprob - b_logprobs[mb]
                    ratio = logratio.exp()
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - logratio).mean()  # the low-variance estimator
                        clipfracs.append(((ratio - 1.0).abs() > clip_coef).float().mean().item())

                    mb_adv = b_advantages[mb]
                    if cfg.norm_adv and len(mb) > 1:
                        mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                    pg_loss = torch.max(-mb_adv * ratio,
                                        -mb_adv * ratio.clamp(1 - clip_coef, 1 + clip_coef)).mean()
                    if cfg.clip_vloss:
                        v_clipped = b_values[mb] + (newvalue - b_values[mb]).clamp(-clip_coef,
                                                                                   clip_coef)
                        v_loss = 0.5 * torch.max((newvalue - b_returns[mb]) ** 2,
                                                 (v_clipped - b_returns[mb]) ** 2).mean()
                    else:
                        v_loss = 0.5 * ((newvalue - b_returns[mb]) ** 2).mean()
                    entropy_loss = entropy.mean()
                    loss = pg_loss - cfg.ent_coef * entropy_loss + cfg.vf_coef * v_loss
                    if not math.isfinite(loss.item()):
                        raise NonFiniteLoss(f"the PPO loss became {loss.item()}")

                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.max_grad_norm is not None:
                        nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"],
                                                 cfg.max_grad_norm, foreach=True)
                    self.optimizer.step()
                if cfg.target_kl is not None and approx_kl.item() > cfg.target_kl:
                    break

            if session.log_due(self.step):
                var_y = b_returns.var().item()
                explained = (math.nan if var_y == 0
                             else 1 - (b_returns - b_values).var().item() / var_y)
                session.log(self.step, {
                    "train/policy_loss": pg_loss.item(), "train/value_loss": v_loss.item(),
                    "train/entropy": entropy_loss.item(), "train/approx_kl": approx_kl.item(),
                    "train/clipfrac": float(np.mean(clipfracs)),
                    "train/explained_variance": explained,
                    "train/learning_rate": self.optimizer.param_groups[0]["lr"],
                    "train/clip_coef": clip_coef})
            session.on_step(self.step)

    # -- state --------------------------------------------------------------------------------
    def _weights(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "log_std": self.log_std.detach().clone(),
                "obs_norm": self.obs_norm.stats.state_dict()}

    def _training_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "envs": self.envs.state_dict(),
                "reward_scale": self.reward_scale.state_dict(), "rng": generator_state(self.rng)}

    def _load(self, weights: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.actor.load_state_dict(weights["actor"])
        self.critic.load_state_dict(weights["critic"])
        with torch.no_grad():
            self.log_std.copy_(weights["log_std"])
        self.obs_norm.stats.load_state_dict(weights["obs_norm"])
        if state is None:
            return
        self.optimizer.load_state_dict(state["optimizer"])
        self.envs.load_state_dict(state["envs"])
        self.reward_scale.load_state_dict(state["reward_scale"])
        set_generator_state(self.rng, state["rng"])


def _gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, next_value: np.ndarray,
         gamma: float, lam: float) -> torch.Tensor:
    """GAE(lambda) advantages [T, N]; `dones[t]` marks an episode that ended at step t."""
    advantages = np.zeros_like(rewards)
    last = np.zeros_like(next_value)
    for t in reversed(range(len(rewards))):
        following = next_value if t == len(rewards) - 1 else values[t + 1]
        alive = 1.0 - dones[t]
        delta = rewards[t] + gamma * following * alive - values[t]
        last = delta + gamma * lam * alive * last
        advantages[t] = last
    return torch.from_numpy(advantages)
