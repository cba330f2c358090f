"""The MAML-TRPO update, top to bottom (Finn et al., 2017, Algorithm 3).

For a meta-batch of K tasks:
1. sample `fast_batch_size` episodes per task with theta, fit the baseline, and take
   `num_steps` policy-gradient steps per task: theta'_k = theta - fast_lr * grad L_k(theta)
   (each further step on fresh episodes of the adapted policy);
2. sample episodes with each theta'_k (the "valid" episodes);
3. TRPO on the mean over tasks of the surrogate of the valid episodes, as a function of
   theta through the inner update: the gradient and the exact Hessian-vector products of
   the mean KL are taken through theta'(theta) (double backprop), then conjugate gradient,
   the step scaled to `max_kl`, and a backtracking line search that keeps theta when no
   step improves the surrogate within the KL bound.
All K tasks go through each stage together: their own parameters are [K, ...] tensors.

The KL Hessian at theta (where CG needs it) is exactly J^T M J, with J the Jacobian of the
adapted policies' distribution parameters in theta and M the KL's Hessian in those
parameters: the other term of the chain rule is multiplied by the KL's first derivative,
which is zero there. J = J_f (I - fast_lr H_inner) per inner step, with H_inner the inner
loss's Hessian, so a product costs two Hessian-vector products of the inner loss (double
backprop through the inner update) and a Jacobian product each way of the policy, and
never the third derivatives that differentiating the KL's gradient again would compute
only for the zero to multiply them (the same numbers: tested).

This module is the reference: autograd, any policy, the math in one place. `trpo_step`
takes the objective as an argument; gymlab.agents.maml.fast picks it (for Gaussian MLP
policies, the same quantities from derivatives written out by hand, in C or torch ops;
docs/maml.md), and the tests hold every fast path to `AutogradMetaObjective`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from gymlab.agents.maml.config import MAMLConfig
from gymlab.agents.maml.episodes import MetaBatch, TaskEpisodes
from gymlab.agents.maml.policy import DistParams, Params, Policy, forward_tasks, per_task
from gymlab.agents.maml.trpo import (
    conjugate_gradient,
    flat,
    line_search,
    set_flat,
    unflat,
)


def weighted_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per task, the mean of `values` [K, B, T] over the steps that happened: [K]."""
    return (values * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)


def inner_loss(policy: Policy, params: Params, episodes: TaskEpisodes) -> torch.Tensor:
    """REINFORCE with the baseline's advantages, per task: [K]."""
    logp = policy.log_prob(forward_tasks(policy, params, episodes.obs), episodes.actions)
    return -weighted_mean(logp * episodes.advantages, episodes.mask)


InnerGradient = tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]
"""One inner step's parameters [K, ...] as a list, and every task's inner-loss gradient in
them (with its graph when taken with `create_graph`)."""


def inner_gradient(policy: Policy, params: Params, episodes: TaskEpisodes, create_graph: bool
                   ) -> InnerGradient:
    """The parameters [K, ...] as a list and every task's inner-loss gradient in them.

    Task k's loss depends only on its own slice, so the gradient of the sum is each task's
    own gradient. Without `create_graph` that gradient is a constant to the meta-gradient:
    first-order MAML, really (d theta' / d theta is the identity)."""
    inputs = list(params.values())
    loss = inner_loss(policy, params, episodes).sum()
    return inputs, torch.autograd.grad(loss, inputs, create_graph=create_graph,
                                       retain_graph=True)


def adapt(policy: Policy, params: Params, train: list[TaskEpisodes], fast_lr: float,
          create_graph: bool) -> tuple[Params, list[InnerGradient]]:
    """theta'_k for every task after len(train) inner steps from `params` (entries [K, ...],
    each task's own), as functions of them, and the inner gradients (when `create_graph`,
    kept for Hessian products of the inner losses)."""
    kept: list[InnerGradient] = []
    for episodes in train:
        step = inner_gradient(policy, params, episodes, create_graph)
        if create_graph:
            kept.append(step)
        params = {name: p - fast_lr * g for (name, p), g in zip(params.items(), step[1])}
    return params, kept


def surrogate(policy: Policy, params: Params, batch: MetaBatch, cfg: MAMLConfig,
              old: DistParams | None, second_order: bool
              ) -> tuple[torch.Tensor, torch.Tensor, DistParams, Params, list[InnerGradient]]:
    """Mean over tasks of the valid episodes' TRPO surrogate and of KL(old || adapted); the
    adapted policies' distributions (detached) serve as `old` when none is given. Also the
    adapted parameters and the inner gradients."""
    with torch.enable_grad():
        tasks = batch.valid.mask.shape[0]
        adapted, steps = adapt(policy, per_task(params, tasks), batch.train, cfg.fast_lr,
                               create_graph=second_order and not cfg.first_order)
        valid = batch.valid
        dist = forward_tasks(policy, adapted, valid.obs)
        if old is None:
            old = tuple(d.detach() for d in dist)
        ratio = torch.exp(policy.log_prob(dist, valid.actions)
                          - policy.log_prob(old, valid.actions))
        loss = -weighted_mean(ratio * valid.advantages, valid.mask).mean()
        kl = weighted_mean(policy.kl(old, dist), valid.mask).mean()
    return loss, kl, old, adapted, steps


def kl_hessian_product(policy: Policy, leaves: list[torch.Tensor], adapted: Params,
                       steps: list[InnerGradient], valid: TaskEpisodes, old: DistParams,
                       fast_lr: float, damping: float
                       ) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> (H + damping I) v, H the exact Hessian in theta of the mean KL(old || adapted)
    at theta (see the module doc: J^T M J, J through the inner steps)."""
    phi = [p.detach().requires_grad_() for p in adapted.values()]
    dist = forward_tasks(policy, dict(zip(adapted, phi)), valid.obs)
    probe = [torch.zeros_like(d, requires_grad=True) for d in dist]
    vjp = torch.autograd.grad(dist, phi, probe, create_graph=True)  # J_f^T probe, linear
    outputs = [d.detach().requires_grad_() for d in dist]
    kl = weighted_mean(policy.kl(old, tuple(outputs)), valid.mask).mean()
    kl_grad = torch.autograd.grad(kl, outputs, create_graph=True)
    tasks = valid.mask.shape[0]

    def inner_hessian(step: InnerGradient, w: list[torch.Tensor]) -> list[torch.Tensor]:
        inputs, grads = step
        hw = torch.autograd.grad(grads, inputs, w, retain_graph=True)
        return [a - fast_lr * b for a, b in zip(w, hw)]  # (I - fast_lr H_inner) w

    def product(vector: torch.Tensor) -> torch.Tensor:
        w = [x.expand(tasks, *x.shape) for x in unflat(vector, leaves)]
        for step in steps:
            w = inner_hessian(step, w)
        jw = torch.autograd.grad(vjp, probe, w, retain_graph=True)  # J_f w
        mjw = torch.autograd.grad(kl_grad, outputs, jw, retain_graph=True)
        z = list(torch.autograd.grad(dist, phi, mjw, retain_graph=True))  # J_f^T M J_f w
        for step in reversed(steps):
            z = inner_hessian(step, z)
        return flat(t.sum(0) for t in z) + damping * vector

    return product


class MetaObjective(Protocol):
    """What TRPO's step needs of the meta-objective at theta, in flat vectors."""

    def loss_and_gradient(self) -> tuple[float, torch.Tensor]:
        """The surrogate at theta and its gradient."""

    def fisher_product(self, vector: torch.Tensor) -> torch.Tensor:
        """(H_KL + damping I) v."""

    def evaluate(self, theta: torch.Tensor) -> tuple[float, float]:
        """The surrogate and the mean KL from theta's adapted policies, at other parameters."""


class AutogradMetaObjective:
    """The meta-update's objective at theta through autograd (any policy): the surrogate's
    value and gradient, the KL Hessian products of `kl_hessian_product`, and the line
    search's loss and KL at other parameters (which it sets in the policy)."""

    def __init__(self, policy: Policy, batch: MetaBatch, cfg: MAMLConfig) -> None:
        self.policy, self.batch, self.cfg = policy, batch, cfg
        self.params = dict(policy.named_parameters())
        self.leaves = list(self.params.values())
        self.loss, _, self.old, adapted, steps = surrogate(policy, self.params, batch, cfg,
                                                           None, True)
        self.fisher_product = kl_hessian_product(policy, self.leaves, adapted, steps,
                                                 batch.valid, self.old, cfg.fast_lr,
                                                 cfg.cg_damping)

    def loss_and_gradient(self) -> tuple[float, torch.Tensor]:
        grads = torch.autograd.grad(self.loss, self.leaves, retain_graph=True)
        return self.loss.item(), flat(grads)

    def evaluate(self, theta: torch.Tensor) -> tuple[float, float]:
        set_flat(self.leaves, theta)
        loss, kl, *_ = surrogate(self.policy, self.params, self.batch, self.cfg, self.old,
                                 second_order=False)
        return loss.item(), kl.item()


@dataclass
class StepStats:
    loss_before: float
    loss_after: float
    kl: float
    line_search_steps: int
    """Steps the line search tried until it accepted one (0: none passed, theta kept)."""


def trpo_step(policy: Policy, objective: MetaObjective, cfg: MAMLConfig) -> StepStats:
    """One meta-update of the policy's parameters in place, from `objective` (the policy's
    meta-objective on a meta-batch: `AutogradMetaObjective`, or fast.meta_objective's)."""
    old_loss, grads = objective.loss_and_gradient()
    direction, fisher_direction = conjugate_gradient(objective.fisher_product, grads,
                                                     cfg.cg_iters)
    shs = 0.5 * (direction @ fisher_direction)
    if not (math.isfinite(shs.item()) and shs.item() > 0):
        return StepStats(old_loss, old_loss, 0.0, 0)  # no curvature: nothing to step along
    full_step = direction / torch.sqrt(shs / cfg.max_kl)
    leaves = list(policy.parameters())
    theta = flat(leaves).detach()
    new_theta, steps, new_loss, new_kl = line_search(
        objective.evaluate, theta, full_step, old_loss, cfg.max_kl, cfg.ls_max_steps,
        cfg.ls_backtrack_ratio)
    set_flat(leaves, new_theta)
    return StepStats(old_loss, new_loss, new_kl, steps)
