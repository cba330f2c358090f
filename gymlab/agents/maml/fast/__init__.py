"""The fast paths of MAML's meta-update, behind one seam: `path(policy)` picks, the three
entry points below follow it, and nothing outside this subpackage imports its modules.

- "c": a Gaussian MLP policy with float32 CPU parameters where native.py's C code builds
  (a C compiler, a CPU with AVX2/FMA, GYMLAB_NATIVE not 0): the derivatives written out by
  hand (gaussian_mlp.py, assembled by analytic.py), their passes and sweeps in C (passes.c,
  sweeps.c on kernels.h);
- "torch": a Gaussian MLP otherwise: the same hand-derived derivatives as torch ops;
- "autograd": any other policy: metalearner.py, the readable reference every fast path is
  tested against.

All three compute the same numbers (to float32 rounding). docs/maml.md derives them and
says how the C code is built; benchmarks/maml.py --parts speed times them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from gymlab.agents.maml.config import MAMLConfig
from gymlab.agents.maml.episodes import MetaBatch, TaskEpisodes
from gymlab.agents.maml.fast import native
from gymlab.agents.maml.fast.analytic import GaussianMetaObjective, adapted_parameters
from gymlab.agents.maml.fast.gaussian_mlp import GaussianMLP, supports
from gymlab.agents.maml.metalearner import AutogradMetaObjective, MetaObjective, adapt
from gymlab.agents.maml.policy import DistParams, Params, Policy, forward_tasks, per_task

Implementation = Literal["c", "torch", "autograd"]
"""What computes the meta-update's derivatives (see the module doc)."""

__all__ = ["Implementation", "path", "meta_objective", "adapted", "sampling_policy"]


def path(policy: Policy) -> Implementation:
    """Which implementation serves `policy`'s meta-update and sampling (see the module doc)."""
    if not supports(policy):
        return "autograd"
    return "c" if native.usable(next(policy.parameters())) else "torch"


def meta_objective(policy: Policy, batch: MetaBatch, cfg: MAMLConfig) -> MetaObjective:
    """The meta-objective at the policy's parameters on `batch`, for metalearner.trpo_step."""
    if path(policy) == "autograd":
        return AutogradMetaObjective(policy, batch, cfg)
    return GaussianMetaObjective(policy, batch, cfg.fast_lr, cfg.first_order, cfg.cg_damping,
                                 cfg.num_workers)


def adapted(policy: Policy, params: Params, episodes: TaskEpisodes, fast_lr: float) -> Params:
    """Every task's parameters after one inner step of `fast_lr` on its episodes, from
    `params` (entries [K, ...]), detached: what the sampler runs next."""
    if path(policy) != "autograd":
        return adapted_parameters(policy, params, episodes, fast_lr)  # type: ignore[arg-type]
    step, _ = adapt(policy, params, [episodes], fast_lr, create_graph=False)
    return {name: p.detach() for name, p in step.items()}


def sampling_policy(policy: Policy, params: Params | None, tasks: int
                    ) -> Callable[[torch.Tensor], DistParams]:
    """obs [K, B, d] -> the action distributions of the shared policy (params None) or of
    each task's own parameters (entries [K, ...]). On the "c" path a Gaussian MLP's mean is
    one call of the C forward pass per time step, its weights made contiguous once."""
    if path(policy) != "c":
        if params is None:
            return policy
        return lambda obs: forward_tasks(policy, params, obs)
    net = GaussianMLP(policy)  # type: ignore[arg-type]
    if params is None:
        params = per_task(dict(policy.named_parameters()), tasks)
    own = {name: p.detach().contiguous() for name, p in params.items()}
    log_std = own["log_std"].clamp(min=net.min_log_std).unsqueeze(1)
    mean_of = native.ForwardPass(net.layers, own, net.tanh)

    def distribution(obs: torch.Tensor) -> DistParams:
        _, _, mean = mean_of(obs)  # obs [K, B, d], float32 from either batch env
        return mean, log_std.expand_as(mean)

    return distribution
