"""MAML-TRPO's meta-objective for the Gaussian MLP policy, from derivatives written out by
hand (gaussian_mlp.py).

The meta-update needs the meta-gradient and, for every conjugate-gradient iteration, a
product with the KL Hessian through the inner update: J^T M J with J = J_f (I - fast_lr H)
per inner step (metalearner.py). Autograd gets H w by differentiating its own backward pass
(metalearner.kl_hessian_product), which records every intermediate of that backward pass
and also computes derivatives that nothing uses; here H w, J_f and J_f^T are the
R-operator's sweeps of gaussian_mlp.py, with autograd's numbers to rounding (tested in
float64). Every term is a per-task one until the mean over tasks, so the objective is a sum
over chunks of tasks small enough for the CPU's caches (with the C code, which tiles the
steps itself: NATIVE_CHUNKS), run on `num_workers` threads. benchmarks/maml.py --parts
speed times it against the autograd path.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache, cached_property

import torch

from gymlab.agents.maml.episodes import MetaBatch, TaskEpisodes
from gymlab.agents.maml.fast import native
from gymlab.agents.maml.fast.gaussian_mlp import (
    Forward,
    GaussianMLP,
    inner_steps,
    step_weights,
    through_inner_steps,
)
from gymlab.agents.maml.policy import GaussianMLPPolicy, Params
from gymlab.agents.maml.trpo import flat, unflat

Tensor = torch.Tensor


def loss_and_kl(valid: TaskEpisodes, fwd: Forward, old: Forward, all_tasks: int
                ) -> tuple[float, float]:
    """The TRPO surrogate of the valid episodes and the mean KL(old || new), as in
    metalearner.surrogate: means over tasks of per-task means over the steps."""
    actions = valid.actions.reshape(fwd.mean.shape)
    new_std, old_std = fwd.log_std.unsqueeze(1), old.log_std.unsqueeze(1)
    log_ratio = (0.5 * ((actions - old.mean) * torch.exp(-old_std)) ** 2
                 - 0.5 * ((actions - fwd.mean) * torch.exp(-new_std)) ** 2
                 + old_std - new_std).sum(-1)
    weights = step_weights(valid.mask) / all_tasks
    loss = -(weights * torch.exp(log_ratio) * valid.advantages.reshape(weights.shape)).sum()
    kl = (new_std - old_std + (torch.exp(2 * old_std) + (old.mean - fwd.mean) ** 2)
          / (2 * torch.exp(2 * new_std)) - 0.5).sum(-1)
    return loss.item(), (weights * kl).sum().item()


class TaskChunk:
    """The meta-update's objective restricted to some of the tasks (its share of the means
    over all `all_tasks`): value and gradient, KL Hessian products, and the line search's
    loss and KL at other parameters. Its tasks' parameters are [K, ...] tensors."""

    def __init__(self, net: GaussianMLP, theta: Params, batch: MetaBatch, fast_lr: float,
                 first_order: bool, all_tasks: int) -> None:
        self.net, self.batch, self.fast_lr, self.first_order = net, batch, fast_lr, first_order
        self.tasks = batch.valid.mask.shape[0]
        self.adapted, self.steps = inner_steps(net, self.per_task(theta), batch.train, fast_lr)
        self.valid = net.forward(self.adapted, batch.valid.obs)
        self.all_tasks = all_tasks
        self.weights = (step_weights(batch.valid.mask) / all_tasks).unsqueeze(-1)
        self.inv_var = torch.exp(-2 * self.valid.log_std).unsqueeze(1)

    @cached_property
    def output_jacobians(self) -> list[Tensor]:
        return native.output_jacobians(self.net.layers, self.adapted, self.valid)

    def per_task(self, params: Params) -> Params:
        return {n: p.expand(self.tasks, *p.shape) for n, p in params.items()}

    def pull_back(self, d_mean: Tensor, d_log_std: Tensor) -> Params:
        """Chain rule from the adapted policies' mean/log-std back to theta, summed over
        the tasks: (I - fast_lr H)^T J_f^T applied to the derivatives."""
        grads, *_ = self.net.backward(self.adapted, self.valid, d_mean, d_log_std)
        return self.through_inner_update(grads)

    def through_inner_update(self, grads: Params) -> Params:
        """(I - fast_lr H)^T applied to derivatives in the adapted parameters, summed over
        the tasks."""
        if not self.first_order:  # first-order MAML: d theta' / d theta is the identity
            grads = through_inner_steps(self.net, self.steps[::-1], grads, self.fast_lr)
        return {n: g.sum(0) for n, g in grads.items()}

    def loss_and_gradient(self) -> tuple[float, Params]:
        """The surrogate at theta (where the likelihood ratio is 1) and its gradient."""
        valid = self.batch.valid
        advantages = self.weights * valid.advantages.reshape(self.weights.shape)
        diff = valid.actions.reshape(self.valid.mean.shape) - self.valid.mean
        d_mean = -advantages * diff * self.inv_var
        d_log_std = -(advantages * (diff * diff * self.inv_var - 1)).sum(1)
        return -advantages.sum().item(), self.pull_back(d_mean, d_log_std)

    def fisher_product(self, v: Params) -> Params:
        """H_KL v, H_KL the mean KL's Hessian in theta: J^T M J v, with M the Gaussian KL's
        Hessian at equal distributions, diag(1 / sigma^2) for the mean and 2 for the
        log-std."""
        w = self.per_task(v)
        if not self.first_order:
            w = through_inner_steps(self.net, self.steps, w, self.fast_lr)
        d_log_std = 2 * w["log_std"] * self.valid.free * self.weights.sum(1)
        if self.net.native:
            grads = native.jacobian_gram(self.net.layers, self.adapted, self.valid,
                                         self.output_jacobians, w, self.weights, self.inv_var)
            grads["log_std"] = d_log_std * self.valid.free
            return self.through_inner_update(grads)
        r_mean, _ = self.net.tangent(self.adapted, self.valid, w)
        return self.pull_back(self.weights * self.inv_var * r_mean, d_log_std)

    def evaluate(self, theta: Params) -> tuple[float, float]:
        adapted, _ = inner_steps(self.net, self.per_task(theta), self.batch.train,
                                 self.fast_lr, keep=False)
        return loss_and_kl(self.batch.valid, self.net.forward(adapted, self.batch.valid.obs),
                           self.valid, self.all_tasks)


CHUNK_ELEMENTS = 2**18
"""About this many floats per activation tensor of a chunk of tasks (1 MiB): small enough
that a product's intermediates stay in the CPU's caches."""


NATIVE_CHUNKS = 2
"""With the C code, which tiles the steps itself, the tasks are cut into this many chunks:
fewer, larger calls than CHUNK_ELEMENTS makes, and one for each of two workers. It does not
follow num_workers, so that neither do the sums, nor the run."""


def chunk_size(net: GaussianMLP, episodes: TaskEpisodes) -> int:
    """Tasks per chunk: a share of NATIVE_CHUNKS with the C code, else about CHUNK_ELEMENTS
    floats in the widest layer's activations."""
    if net.native:
        return -(-episodes.mask.shape[0] // NATIVE_CHUNKS)
    return max(1, CHUNK_ELEMENTS // (episodes.mask[0].numel() * net.widest))


@torch.no_grad()
def adapted_parameters(policy: GaussianMLPPolicy, params: Params, episodes: TaskEpisodes,
                       fast_lr: float) -> Params:
    """Every task's parameters after one inner step from `params` [K, ...], detached (for
    sampling), computed in chunks of tasks."""
    net = GaussianMLP(policy)
    chunk, tasks = chunk_size(net, episodes), episodes.mask.shape[0]
    parts = []
    for start in range(0, tasks, chunk):
        part = slice(start, start + chunk)
        parts.append(inner_steps(net, {n: p[part].detach() for n, p in params.items()},
                                 [episodes.select(part)], fast_lr, keep=False)[0])
    return {n: torch.cat([p[n] for p in parts]) for n in params}


@cache
def thread_pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="gymlab-maml")


class GaussianMetaObjective:
    """The meta-update's objective at theta for a Gaussian MLP policy, as sums over chunks
    of tasks (every term is a per-task one until the mean over tasks), the chunks run on
    `workers` threads (torch releases the GIL in its kernels). Sums are taken in chunk
    order, so the numbers do not depend on the threads. Flat vectors in and out, as TRPO's
    conjugate gradient and line search use them."""

    def __init__(self, policy: GaussianMLPPolicy, batch: MetaBatch, fast_lr: float,
                 first_order: bool, damping: float, workers: int = 1) -> None:
        self.names = [name for name, _ in policy.named_parameters()]
        self.like = [p.detach() for p in policy.parameters()]
        self.damping = damping
        self.pool = thread_pool(workers) if workers > 1 else None
        tasks = batch.valid.mask.shape[0]
        net = GaussianMLP(policy)
        chunk = chunk_size(net, batch.valid)
        theta = {n: p.detach() for n, p in policy.named_parameters()}

        def make(start: int) -> TaskChunk:
            part = slice(start, start + chunk)
            return TaskChunk(net, theta, MetaBatch([e.select(part) for e in batch.train],
                                                   batch.valid.select(part)),
                             fast_lr, first_order, tasks)

        self.chunks = self.map(make, range(0, tasks, chunk))

    def map(self, fn, items) -> list:
        with torch.no_grad():
            if self.pool is None:
                return [fn(item) for item in items]
            return list(self.pool.map(fn, items))

    def unflat(self, vector: Tensor) -> Params:
        return dict(zip(self.names, unflat(vector, self.like)))

    def flat_sum(self, parts: list[Params]) -> Tensor:
        return flat(sum(p[n] for p in parts) for n in self.names)

    def loss_and_gradient(self) -> tuple[float, Tensor]:
        parts = self.map(TaskChunk.loss_and_gradient, self.chunks)
        return sum(loss for loss, _ in parts), self.flat_sum([g for _, g in parts])

    def fisher_product(self, vector: Tensor) -> Tensor:
        """(H_KL + damping I) v."""
        v = self.unflat(vector)
        parts = self.map(lambda chunk: chunk.fisher_product(v), self.chunks)
        return self.flat_sum(parts) + self.damping * vector

    def evaluate(self, theta: Tensor) -> tuple[float, float]:
        """The surrogate and the mean KL (from theta's adapted policies) at other
        parameters."""
        params = self.unflat(theta)
        parts = self.map(lambda chunk: chunk.evaluate(params), self.chunks)
        return sum(loss for loss, _ in parts), sum(kl for _, kl in parts)
