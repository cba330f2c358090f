"""MAML's policies as functions of explicit parameters.

The inner loop adapts a *dictionary* of parameters, never a copy of the module:
`functional_call(policy, params, obs)` runs the module with them. `forward_tasks` runs K
tasks' own parameters (each entry [K, ...]) on their own observations [K, ...] in one call,
which is how the sampler and the meta-objective treat all tasks of a meta-batch at once: the
layers are `TaskLinear`, whose batched matmul takes weights with or without a leading task
dimension. (`torch.func.vmap` over `functional_call` computes the same; plain batched
matmuls keep the graph that the meta-update differentiates two more times made of ordinary
autograd ops.)

A policy's forward returns the distribution's parameters as a tuple of tensors: (mean,
log_std) for a Gaussian, (logits,) for a categorical.
"""

from __future__ import annotations

import math
from typing import Literal

import gymnasium as gym
import torch
from torch import nn
from torch.func import functional_call

from gymlab.core.errors import UnsupportedSpaceError
from gymlab.core.networks import ACTIVATIONS

Params = dict[str, torch.Tensor]
DistParams = tuple[torch.Tensor, ...]
PolicyKind = Literal["auto", "gaussian", "categorical"]


class TaskLinear(nn.Linear):
    """nn.Linear whose weight may carry a leading task dimension: weight [K, out, in] and
    bias [K, out] with input [K, N, in] give [K, N, out] (each task its own layer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight.transpose(-1, -2)) + self.bias.unsqueeze(-2)


def task_mlp(in_size: int, hidden: tuple[int, ...], activation: str, out_size: int
             ) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [TaskLinear(in_size, size), ACTIVATIONS[activation]()]
        in_size = size
    layers.append(TaskLinear(in_size, out_size))
    net = nn.Sequential(*layers)
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return net


class GaussianMLPPolicy(nn.Module):
    """Diagonal Gaussian: the mean from an MLP of the observation, a state-independent
    log-std per action dimension (a parameter, adapted by the inner loop like the rest)."""

    discrete = False

    def __init__(self, obs_size: int, act_size: int, hidden: tuple[int, ...], nonlinearity: str,
                 init_std: float = 1.0, min_std: float = 1e-6) -> None:
        super().__init__()
        self.act_size = act_size
        self.mean = task_mlp(obs_size, hidden, nonlinearity, act_size)
        self.log_std = nn.Parameter(torch.full((act_size,), math.log(init_std)))
        self.min_log_std = math.log(min_std)

    def forward(self, obs: torch.Tensor) -> DistParams:
        mean = self.mean(obs)
        log_std = self.log_std.clamp(min=self.min_log_std)
        if log_std.dim() == 2:  # one per task: [K, act] for means [K, N, act]
            log_std = log_std.unsqueeze(1)
        return mean, log_std.expand_as(mean)

    @staticmethod
    def sample(dist: DistParams, generator: torch.Generator | None) -> torch.Tensor:
        mean, log_std = dist
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return mean + log_std.exp() * noise

    @staticmethod
    def log_prob(dist: DistParams, actions: torch.Tensor) -> torch.Tensor:
        """Summed over action dimensions: [...]."""
        mean, log_std = dist
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    @staticmethod
    def kl(p: DistParams, q: DistParams) -> torch.Tensor:
        """KL(p || q), summed over action dimensions: [...]."""
        (mp, lp), (mq, lq) = p, q
        vp, vq = torch.exp(2 * lp), torch.exp(2 * lq)
        return (lq - lp + (vp + (mp - mq) ** 2) / (2 * vq) - 0.5).sum(-1)


class CategoricalMLPPolicy(nn.Module):
    """Categorical over the actions of a Discrete space, logits from an MLP. The
    distribution's parameters are the raw logits (unconstrained: the KL's Hessian in them is
    the Fisher, which the meta-update's Hessian products need)."""

    discrete = True

    def __init__(self, obs_size: int, n_actions: int, hidden: tuple[int, ...],
                 nonlinearity: str) -> None:
        super().__init__()
        self.logits = task_mlp(obs_size, hidden, nonlinearity, n_actions)

    def forward(self, obs: torch.Tensor) -> DistParams:
        return (self.logits(obs),)

    @staticmethod
    def sample(dist: DistParams, generator: torch.Generator | None) -> torch.Tensor:
        logits = dist[0]
        probs = torch.softmax(logits.reshape(-1, logits.shape[-1]), -1)
        return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])

    @staticmethod
    def log_prob(dist: DistParams, actions: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(dist[0], -1)
        return logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def kl(p: DistParams, q: DistParams) -> torch.Tensor:
        logp, logq = torch.log_softmax(p[0], -1), torch.log_softmax(q[0], -1)
        return (logp.exp() * (logp - logq)).sum(-1)


Policy = GaussianMLPPolicy | CategoricalMLPPolicy


def make_policy(obs_space: gym.Space, act_space: gym.Space, kind: PolicyKind,
                hidden: tuple[int, ...], nonlinearity: str, env_id: str = "") -> Policy:
    """The policy for the spaces; UnsupportedSpaceError on a mismatch (a 1-d Box of
    observations, and Box or Discrete actions, are what MAML's policies take)."""
    where = f" of {env_id}" if env_id else ""
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        raise UnsupportedSpaceError(
            f"MAML's policies need a 1-d Box observation space; the one{where} is {obs_space}")
    if kind == "auto":
        kind = "categorical" if isinstance(act_space, gym.spaces.Discrete) else "gaussian"
    if kind == "gaussian":
        if not (isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1):
            raise UnsupportedSpaceError(f"a gaussian policy needs a 1-d Box action space; the "
                                        f"one{where} is {act_space}")
        return GaussianMLPPolicy(obs_space.shape[0], act_space.shape[0], hidden, nonlinearity)
    if not isinstance(act_space, gym.spaces.Discrete):
        raise UnsupportedSpaceError(f"a categorical policy needs a Discrete action space; the "
                                    f"one{where} is {act_space}")
    return CategoricalMLPPolicy(obs_space.shape[0], int(act_space.n), hidden, nonlinearity)


def parameters(policy: Policy) -> Params:
    return dict(policy.named_parameters())


def per_task(params: Params, tasks: int) -> Params:
    """Shared parameters seen as K tasks' own ([K, ...] views, gradients flow back)."""
    return {name: p.expand(tasks, *p.shape) for name, p in params.items()}


def forward_tasks(policy: Policy, params: Params, obs: torch.Tensor) -> DistParams:
    """The distribution of K tasks' policies: params entries [K, ...], obs [K, ..., d]."""
    flat = obs.reshape(obs.shape[0], -1, obs.shape[-1])
    dist = functional_call(policy, params, (flat,))
    return tuple(d.reshape(*obs.shape[:-1], d.shape[-1]) for d in dist)
