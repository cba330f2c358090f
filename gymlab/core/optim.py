"""Adam without `torch.optim`.

Every `torch.optim` optimizer imports `torch._dynamo` (the compiler, with sympy) when it is
built and at its first step, to keep the compiler out of its methods. In a short run that
import costs more than torch's own (benchmarks/startup.py); gymlab compiles nothing, so its
algorithms use this Adam instead. It computes the same numbers as `torch.optim.Adam` with the
same `fused` setting (tested bit for bit), and its state_dict has torch's layout, so either
optimizer loads the other's state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class Adam:
    """Adam (Kingma & Ba) over one group of parameters. `fused=True` runs torch's fused CPU
    kernel; `fused=False` the per-tensor update of torch.optim.Adam's default CPU path.
    Change the learning rate through `param_groups[0]["lr"]`, as with torch's optimizers."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, fused: bool = False) -> None:
        params = list(params)
        if not params:
            raise ValueError("Adam got an empty parameter list")
        self.param_groups: list[dict[str, Any]] = [{
            "params": params, "lr": lr, "betas": tuple(betas), "eps": eps,
            "weight_decay": weight_decay, "amsgrad": False, "maximize": False,
            "foreach": None, "capturable": False, "differentiable": False, "fused": fused,
            "decoupled_weight_decay": False}]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    @property
    def params(self) -> list[torch.Tensor]:
        return self.param_groups[0]["params"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    def _state(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        if p not in self.state:
            self.state[p] = {"step": torch.tensor(0.0, dtype=torch.float32),
                             "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                             "exp_avg_sq": torch.zeros_like(p,
                                                            memory_format=torch.preserve_format)}
        return self.state[p]

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        states = [self._state(p) for p in params]
        beta1, beta2 = group["betas"]
        if group["fused"]:
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                params, [p.grad for p in params], [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states], [], steps, amsgrad=False, lr=group["lr"],
                beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)
            return
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        for p, s in zip(params, states):
            grad = p.grad if weight_decay == 0 else p.grad.add(p, alpha=weight_decay)
            s["step"] += 1
            s["exp_avg"].lerp_(grad, 1 - beta1)
            s["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = s["step"].item()
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            denom = (s["exp_avg_sq"].sqrt() / bias_correction2**0.5).add_(eps)
            p.addcdiv_(s["exp_avg"], denom, value=-lr / bias_correction1)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Adam's layout: per-parameter state by index, and the group."""
        index = {p: i for i, p in enumerate(self.params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"state": {index[p]: dict(s) for p, s in self.state.items()},
                "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        (saved,) = state_dict["param_groups"]
        if len(saved["params"]) != len(self.params):
            raise ValueError(f"the saved optimizer state has {len(saved['params'])} "
                             f"parameters, this optimizer {len(self.params)}")
        self.param_groups[0].update({k: v for k, v in saved.items()
                                     if k in ("lr", "betas", "eps", "weight_decay")})
        self.param_groups[0]["betas"] = tuple(self.param_groups[0]["betas"])
        self.state = {}
        for i, s in state_dict["state"].items():
            p = self.params[int(i)]
            self.state[p] = {
                "step": torch.as_tensor(s["step"], dtype=torch.float32).clone(),
                "exp_avg": s["exp_avg"].to(dtype=p.dtype, device=p.device).clone(),
                "exp_avg_sq": s["exp_avg_sq"].to(dtype=p.dtype, device=p.device).clone()}
