"""The Gaussian MLP policy's passes written out by hand, for MAML's meta-update.

Pearlmutter's R-operator for the MLP: each inner step's forward and backward pass is kept
once (`InnerStep`), and a product with the inner loss's Hessian H is then one forward sweep
of directional derivatives (`GaussianMLP.tangent`) and one backward sweep, two batched
matrix products per layer and sweep; for thin observations (2D navigation's two), the
first layer's share of those sweeps comes from sums made once per inner step
(`FirstLayer`). `GaussianMLP.tangent` and `backward` on the valid episodes are J_f and its
transpose. analytic.py assembles the meta-objective from these.

`GaussianMLP.native` says whether native.py's C code runs (float32 CPU parameters, a CPU
with AVX2/FMA, a C compiler, GYMLAB_NATIVE not 0): then the forward and backward passes and
the first layer's sums come from passes.c and the inner Hessian products from sweeps.c, the
same arithmetic fused tile by tile. Otherwise the torch ops here run; in float64 they are
the path the tests hold to autograd's numbers.

Notation, per task and step n (weights [K, out, in], activations [K, N, size]):
z_l = h_{l-1} W_l^T + b_l, h_l = act(z_l), mu = h_L W_o^T + b_o, log-std s [K, A];
the inner loss is sum_n c_n (0.5 |(a_n - mu_n) / sigma|^2 + sum s) with c_n = A_n m_n / N.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from gymlab.agents.maml.episodes import TaskEpisodes
from gymlab.agents.maml.fast import native
from gymlab.agents.maml.policy import GaussianMLPPolicy, Params

Tensor = torch.Tensor


def supports(policy: nn.Module) -> bool:
    """Whether `policy` is a Gaussian MLP whose activations this module differentiates."""
    return isinstance(policy, GaussianMLPPolicy) and all(
        isinstance(m, (nn.Linear, nn.Tanh, nn.ReLU)) for m in policy.mean)


def tanh_(z: Tensor) -> Tensor:
    """tanh in place, as 2 sigmoid(2 z) - 1: torch's sigmoid kernel is cheaper than its tanh
    kernel (benchmarks/maml.py --parts speed), and the result equals torch.tanh within 1e-7
    (float32: a few ulp of 1), so the meta-update sees the policy's function to rounding."""
    return z.mul_(2).sigmoid_().mul_(2).sub_(1)


def with_bias(weight: Tensor, bias: Tensor) -> Tensor:
    """[W, b], [K, out, in + 1]: the layer as a product with [x, 1]."""
    return torch.cat([weight, bias.unsqueeze(-1)], -1)


def weight_grad(delta: Tensor, inputs: Tensor) -> Tensor:
    """sum_n delta_n inputs_n^T per task, [K, out, in]; the product is taken with the wider
    operand on the left, the orientation in which a BLAS batched product handles a thin
    side (2-d observations) well."""
    if delta.shape[-1] > inputs.shape[-1]:
        return torch.bmm(inputs.mT, delta).mT
    return torch.bmm(delta.mT, inputs)


def step_weights(mask: Tensor, scale: Tensor | None = None) -> Tensor:
    """Per step, its weight in a per-task mean over the steps that happened: [K, N]."""
    flat = mask.reshape(mask.shape[0], -1)
    weights = flat / flat.sum(1, keepdim=True).clamp(min=1)
    return weights if scale is None else weights * scale.reshape(weights.shape)


@dataclass
class Forward:
    """One forward pass of K tasks' mean networks, kept for the sweeps."""

    inputs: list[Tensor]
    """The input of each linear layer, [K, N, in] (the observations first)."""
    slopes: list[Tensor]
    """act'(z_l) of each hidden layer."""
    mean: Tensor
    log_std: Tensor
    """[K, A], clamped at the policy's minimum."""
    free: Tensor
    """[K, A] 1 where the clamp is inactive (the log-std's derivative passes), else 0."""

    @cached_property
    def thin_input(self) -> Tensor | None:
        """[x, 1], the observations and the first bias's input, when there are at most
        THIN_INPUT of them (else None): the first layer's products then take its bias in."""
        obs = self.inputs[0]
        if obs.shape[-1] + 1 > THIN_INPUT:
            return None
        return torch.cat([obs, torch.ones_like(obs[..., :1])], -1)


class GaussianMLP:
    """The policy's layers, addressed by the names of its parameter dictionary."""

    def __init__(self, policy: GaussianMLPPolicy) -> None:
        self.layers = [f"mean.{i}" for i, m in enumerate(policy.mean) if isinstance(m, nn.Linear)]
        self.tanh = any(isinstance(m, nn.Tanh) for m in policy.mean)
        self.min_log_std = policy.min_log_std
        self.widest = max(p.shape[0] for p in policy.parameters())
        self.native = native.usable(policy.log_std)
        """Whether the passes run in native.py's C code (else the torch ops below)."""

    def weight(self, params: Params, i: int) -> tuple[Tensor, Tensor]:
        return params[self.layers[i] + ".weight"], params[self.layers[i] + ".bias"]

    def forward(self, params: Params, obs: Tensor) -> Forward:
        """params [K, ...] per task, obs [K, ..., d]."""
        h = obs.reshape(obs.shape[0], -1, obs.shape[-1])
        log_std = params["log_std"]
        log_std_parts = (log_std.clamp(min=self.min_log_std),
                         (log_std >= self.min_log_std).to(log_std.dtype))
        if self.native:
            hidden, slopes, mean = native.ForwardPass(self.layers, params, self.tanh)(h)
            return Forward([h.contiguous(), *hidden], slopes, mean, *log_std_parts)
        inputs, slopes = [h], []
        for i in range(len(self.layers)):
            weight, bias = self.weight(params, i)
            z = torch.baddbmm(bias.unsqueeze(1), h, weight.mT)
            if i == len(self.layers) - 1:
                break
            if self.tanh:
                h = tanh_(z)
                slope = 1 - h * h
            else:
                h = torch.relu(z)
                slope = (z > 0).to(z.dtype)
            inputs.append(h)
            slopes.append(slope)
        return Forward(inputs, slopes, z, *log_std_parts)

    def tangent(self, params: Params, fwd: Forward, direction: Params
                ) -> tuple[Tensor, list[Tensor | None]]:
        """Forward sweep: the directional derivative of the mean along `direction`, and of
        every layer's input (R{h}), for the backward sweep."""
        r_inputs: list[Tensor | None] = [None]  # the observations do not move
        for i in range(len(self.layers)):
            weight, _ = self.weight(params, i)
            d_weight, d_bias = self.weight(direction, i)
            if i == 0 and fwd.thin_input is not None:
                rz = torch.bmm(fwd.thin_input, with_bias(d_weight, d_bias).mT)
            else:
                rz = torch.bmm(fwd.inputs[i], d_weight.mT)
                if r_inputs[i] is not None:
                    rz.baddbmm_(r_inputs[i], weight.mT)
                rz.add_(d_bias.unsqueeze(1))  # (baddbmm's broadcast bias costs a copy)
            if i == len(self.layers) - 1:
                return rz, r_inputs
            r_inputs.append(rz.mul_(fwd.slopes[i]))
        raise AssertionError("unreachable")

    def backward(self, params: Params, fwd: Forward, d_mean: Tensor, d_log_std: Tensor,
                 keep: bool = False) -> tuple[Params, list[Tensor], list[Tensor]]:
        """Backward pass from the loss's derivatives in the mean [K, N, A] and the log-std
        [K, A]: the gradients [K, ...], and if `keep`, every layer's delta (dL/dz) and
        dL/dh (else each dL/dh is overwritten by its delta, and neither is returned)."""
        if self.native:
            grads, deltas, d_inputs = native.backward(self.layers, params, fwd, d_mean, keep)
            grads["log_std"] = d_log_std * fwd.free
            return grads, deltas, d_inputs
        grads: Params = {"log_std": d_log_std * fwd.free}
        deltas: list[Tensor] = [d_mean]
        d_inputs: list[Tensor] = []
        delta = d_mean
        for i in reversed(range(len(self.layers))):
            weight, _ = self.weight(params, i)
            grads[self.layers[i] + ".weight"] = weight_grad(delta, fwd.inputs[i])
            grads[self.layers[i] + ".bias"] = delta.sum(1)
            if i == 0:
                break
            d_input = torch.bmm(delta, weight)
            if not keep:
                delta = d_input.mul_(fwd.slopes[i - 1])
                continue
            delta = d_input * fwd.slopes[i - 1]
            d_inputs.insert(0, d_input)
            deltas.insert(0, delta)
        return grads, deltas, d_inputs


THIN_INPUT = 8
"""First layers with at most this many inputs (counting the bias's) take their part of the
inner Hessian products from sums over the steps made once per inner step (`FirstLayer`):
those cost as many matrix products of the second layer's size as there are inputs, once,
and save two such products in each of the 20 or more Hessian products of a meta-update."""


@dataclass
class FirstLayer:
    """The inner Hessian product's terms that meet only the first layer's direction and
    the stored pass, summed over the steps once. With x~ = [x, 1] (the observations and the
    bias's input), s = act'(z_0), delta = dL/dz_1 and c the first hidden layer's curvature:
    T[o, j, i] = sum_n delta[n, o] s[n, j] x~[n, i] and U[j, i, i'] = sum_n s c[n, j]
    x~[n, i] x~[n, i']. Then delta^T R{h_0} [o, j] = sum_i T[o, j, i] dW~_0[j, i], and of
    the first layer's gradient, the part from delta dW_1 is sum_o T[o, j, i] dW_1[o, j] and
    the curvature's is sum_i' U[j, i, i'] dW~_0[j, i'] (dW~_0 = [dW_0, db_0])."""

    t: Tensor
    """[K, H_1, H_0, d + 1]."""
    u: Tensor | None
    """[K, H_0, d + 1, d + 1]; None for ReLU, whose curvature is 0."""

    def add_hessian_terms(self, net: GaussianMLP, w: Params, hw: Params) -> None:
        """Add the terms it holds to a Hessian product hw = H w made without them."""
        first_direction = with_bias(*net.weight(w, 0))
        hw[net.layers[1] + ".weight"] += (self.t * first_direction.unsqueeze(1)).sum(-1)
        first = (self.t * net.weight(w, 1)[0].unsqueeze(-1)).sum(1)
        if self.u is not None:
            first += (self.u * first_direction.unsqueeze(-2)).sum(-1)
        hw[net.layers[0] + ".weight"] += first[..., :-1]
        hw[net.layers[0] + ".bias"] += first[..., -1]


@dataclass
class InnerStep:
    """One inner policy-gradient step of every task, with what its Hessian products need."""

    params: Params
    fwd: Forward
    coeff: Tensor
    """c_n = A_n m_n / N, [K, N, 1]."""
    diff: Tensor
    """a - mu, [K, N, A]."""
    scaled: Tensor
    """(a - mu) / sigma^2, [K, N, A]."""
    inv_var: Tensor
    """1 / sigma^2, [K, 1, A]."""
    deltas: list[Tensor]
    """dL/dz of each layer."""
    d_inputs: list[Tensor]
    """dL/dh of each hidden layer."""
    grads: Params
    tanh: bool
    native: bool
    """Whether its Hessian products and first-layer sums run in native.py's C code."""

    @cached_property
    def curvatures(self) -> list[Tensor | None]:
        """Per hidden layer, dL/dh * act''(z) / act'(z): -2 h dL/dh for tanh (None for ReLU,
        whose second derivative is 0), so that R{dL/dz} = act' R{dL/dh} + curvature R{h}.
        Only Hessian products need it."""
        return [-2 * h * d if self.tanh else None
                for h, d in zip(self.fwd.inputs[1:], self.d_inputs)]

    @cached_property
    def first_layer(self) -> FirstLayer | None:
        """The first layer's precomputed terms, when it has a hidden layer after it and at
        most THIN_INPUT inputs (else None). Only Hessian products need them."""
        inputs = self.fwd.thin_input
        if not self.fwd.slopes or inputs is None:
            return None
        if self.native:
            return FirstLayer(*native.first_layer_sums(self))
        slope = self.fwd.slopes[0]
        tasks, steps, width = slope.shape
        d = inputs.shape[-1]
        t = weight_grad(self.deltas[1], (slope.unsqueeze(-1) * inputs.unsqueeze(-2))
                        .reshape(tasks, steps, width * d)).view(tasks, -1, width, d)
        u = None
        if self.curvatures[0] is not None:
            outer = (inputs.unsqueeze(-1) * inputs.unsqueeze(-2)).reshape(tasks, steps, d * d)
            u = weight_grad(slope * self.curvatures[0], outer).view(tasks, width, d, d)
        return FirstLayer(t, u)


def inner_step(net: GaussianMLP, params: Params, episodes: TaskEpisodes, keep: bool = True
               ) -> InnerStep:
    """The inner loss's gradient (REINFORCE with the episodes' advantages) at `params`;
    without `keep`, the step serves no Hessian products (its deltas are not kept)."""
    fwd = net.forward(params, episodes.obs)
    actions = episodes.actions.reshape(fwd.mean.shape)
    coeff = step_weights(episodes.mask, episodes.advantages).unsqueeze(-1)
    inv_var = torch.exp(-2 * fwd.log_std).unsqueeze(1)
    diff = actions - fwd.mean
    scaled = diff * inv_var
    d_mean = -coeff * scaled
    d_log_std = (coeff * (1 - scaled * diff)).sum(1)
    grads, deltas, d_inputs = net.backward(params, fwd, d_mean, d_log_std, keep=keep)
    return InnerStep(params, fwd, coeff, diff, scaled, inv_var, deltas, d_inputs, grads,
                     net.tanh, net.native)


def inner_hessian_product(net: GaussianMLP, step: InnerStep, w: Params) -> Params:
    """H w per task, H the inner loss's Hessian at the step's parameters (R-operator): the
    fused sweep of sweeps.c where the C code runs, else the torch ops below."""
    if step.native:
        return native.inner_hessian_product(net.layers, step, w)
    first = step.first_layer
    hw = torch_inner_hessian_product(net, step, w, held=first is not None)
    if first is not None:
        first.add_hessian_terms(net, w, hw)
    return hw


def torch_inner_hessian_product(net: GaussianMLP, step: InnerStep, w: Params, held: bool
                                ) -> Params:
    """H w per task, leaving out the terms that FirstLayer holds when `held`."""
    params, fwd = step.params, step.fwd
    r_mean, r_inputs = net.tangent(params, fwd, w)
    r_log_std = (w["log_std"] * fwd.free).unsqueeze(1)
    r_delta = step.coeff * (step.inv_var * r_mean + 2 * step.scaled * r_log_std)
    hw: Params = {"log_std": 2 * fwd.free * (
        step.coeff * step.scaled * (r_mean + step.diff * r_log_std)).sum(1)}
    for i in reversed(range(len(net.layers))):
        weight, _ = net.weight(params, i)
        d_weight, _ = net.weight(w, i)
        held_here = held and i == 1  # FirstLayer holds delta_1's terms with R{h_0}
        r_grad = weight_grad(r_delta, fwd.inputs[i])
        if r_inputs[i] is not None and not held_here:
            r_grad = r_grad.baddbmm_(step.deltas[i].mT, r_inputs[i])
        hw[net.layers[i] + ".weight"] = r_grad
        hw[net.layers[i] + ".bias"] = r_delta.sum(1)
        if i == 0:
            break
        r_delta = torch.bmm(r_delta, weight)  # R{dL/dh} of the layer below, so far
        if not held_here:
            r_delta.baddbmm_(step.deltas[i], d_weight)
        r_delta.mul_(fwd.slopes[i - 1])
        if not held_here and step.curvatures[i - 1] is not None:
            r_delta.addcmul_(step.curvatures[i - 1], r_inputs[i])
    return hw


def inner_steps(net: GaussianMLP, params: Params, train: list[TaskEpisodes], fast_lr: float,
                keep: bool = True) -> tuple[Params, list[InnerStep]]:
    """theta'_k after len(train) inner steps from `params` [K, ...], and the steps (for
    Hessian products if `keep`)."""
    steps = []
    for episodes in train:
        step = inner_step(net, params, episodes, keep)
        steps.append(step)
        params = {n: torch.add(p, step.grads[n], alpha=-fast_lr) for n, p in params.items()}
    return params, steps


def through_inner_steps(net: GaussianMLP, steps: list[InnerStep], w: Params, fast_lr: float
                        ) -> Params:
    """prod (I - fast_lr H_j) w over `steps` in the order given."""
    for step in steps:
        hw = inner_hessian_product(net, step, w)
        w = {name: torch.add(t, hw[name], alpha=-fast_lr) for name, t in w.items()}
    return w
