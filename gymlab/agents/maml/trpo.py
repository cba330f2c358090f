"""TRPO's pieces (Schulman et al., 2015): flat parameter vectors, conjugate gradient, and
the backtracking line search. The KL Hessian products CG needs are MAML's own
(metalearner.kl_hessian_product)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch


def flat(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflat(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """`vector` cut into views shaped like each tensor of `like`."""
    out, offset = [], 0
    for p in like:
        out.append(vector[offset: offset + p.numel()].view_as(p))
        offset += p.numel()
    return out


def set_flat(params: Sequence[torch.Tensor], vector: torch.Tensor) -> None:
    """Copy `vector` into the parameters (in place, outside autograd)."""
    offset = 0
    with torch.no_grad():
        for p in params:
            p.copy_(vector[offset: offset + p.numel()].view_as(p))
            offset += p.numel()


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       iters: int, residual_tol: float = 1e-10
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximately solve A x = b for a symmetric positive definite A given as `matvec`.
    Returns x and A x; the latter is b minus CG's residual, so TRPO's step length costs no
    further product with A."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr.item() < residual_tol:
            break
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, b - r


def line_search(evaluate: Callable[[torch.Tensor], tuple[float, float]], theta: torch.Tensor,
                full_step: torch.Tensor, old_loss: float, max_kl: float, max_steps: int,
                backtrack_ratio: float) -> tuple[torch.Tensor, int, float, float]:
    """Try theta - r^i * full_step for i = 0, 1, ...; accept the first whose loss is below
    `old_loss` with a KL within `max_kl`. `evaluate(theta)` -> (loss, kl). Returns the new
    theta (the old one when nothing passes), the steps tried (0: none accepted), and the
    accepted loss and KL (the old loss and 0 when none)."""
    fraction = 1.0
    for i in range(max_steps):
        candidate = theta - fraction * full_step
        loss, kl = evaluate(candidate)
        if loss < old_loss and kl < max_kl:  # NaN fails both tests
            return candidate, i + 1, loss, kl
        fraction *= backtrack_ratio
    return theta, 0, old_loss, 0.0
