"""A batch of episodes of K tasks, the linear feature baseline, and GAE advantages.

`TaskEpisodes` holds B episodes of each of K tasks, padded to the longest one: every tensor
is [K tasks, B episodes, T steps, ...] with `mask` 1 on the steps that happened. The
baseline (Duan et al., 2016) is a ridge regression of the discounted returns on [obs,
obs^2, t, t^2, t^3, 1] with t = step / 100, fitted per task on that task's episodes, the
fit redone on every batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class TaskEpisodes:
    """K tasks x B episodes x T steps, padded; advantages are set by `fit_advantages`."""

    obs: torch.Tensor
    """[K, B, T, obs_size] float32 observations the actions were taken in."""
    actions: torch.Tensor
    """[K, B, T, act_size] float32 (Box) or [K, B, T] int64 (Discrete)."""
    rewards: torch.Tensor
    """[K, B, T] float32, 0 after an episode ended."""
    mask: torch.Tensor
    """[K, B, T] float32: 1 on the steps that happened."""
    advantages: torch.Tensor | None = None
    """[K, B, T] float32 normalised GAE advantages, 0 where masked."""

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted return of each episode, [K, B]."""
        return (self.rewards * self.mask).sum(-1)

    @property
    def steps(self) -> int:
        return int(self.mask.sum().item())

    def select(self, tasks: slice) -> TaskEpisodes:
        """These tasks' episodes (views)."""
        return TaskEpisodes(**{f.name: None if (t := getattr(self, f.name)) is None
                               else t[tasks] for f in fields(self)})


@dataclass
class MetaBatch:
    """What one meta-update learns from: the inner-loop episodes of each step, and the
    episodes of the adapted policies."""

    train: list[TaskEpisodes]
    valid: TaskEpisodes


def discount_matrix(length: int, factor: float, device: torch.device) -> torch.Tensor:
    """M[t', t] = factor^(t' - t) for t' >= t (else 0): x @ M sums factor^l x[t + l]."""
    t = torch.arange(length, device=device, dtype=torch.float64)
    power = t[:, None] - t[None, :]
    return torch.where(power >= 0, factor ** power.clamp(min=0), torch.zeros_like(power))


class LinearFeatureBaseline:
    """Ridge least squares of returns on [obs, obs^2, t, t^2, t^3, 1], one fit per task.

    A fit whose normal equations are not positive definite (Cholesky fails) or give a
    non-finite solution is retried with the regularisation multiplied by 10, up to
    `max_tries` times in all.
    """

    def __init__(self, reg_coeff: float = 1e-5, max_tries: int = 5) -> None:
        self.reg_coeff = reg_coeff
        self.max_tries = max_tries
        self.last_reg: torch.Tensor | None = None
        """Per task, the regularisation the last fit ended with."""

    @staticmethod
    def features(episodes: TaskEpisodes) -> torch.Tensor:
        """[K, B, T, 2 * obs_size + 4] float64, zero where masked."""
        obs = episodes.obs.double()
        mask = episodes.mask.double().unsqueeze(-1)
        t = torch.arange(obs.shape[2], device=obs.device, dtype=torch.float64) / 100.0
        t = t.view(1, 1, -1, 1) * mask
        return torch.cat([obs, obs**2, t, t**2, t**3, mask], -1) * mask

    def ridge_solve(self, xtx: torch.Tensor, xty: torch.Tensor) -> torch.Tensor:
        """Solve (X^T X + reg I) w = X^T y per task ([K, F, F], [K, F]); see the class doc."""
        eye = torch.eye(xtx.shape[-1], dtype=xtx.dtype, device=xtx.device)
        reg = torch.full((xtx.shape[0],), self.reg_coeff, dtype=xtx.dtype, device=xtx.device)
        coeffs = torch.zeros_like(xty)
        todo = torch.ones_like(reg, dtype=torch.bool)
        for _ in range(self.max_tries):
            chol, info = torch.linalg.cholesky_ex(xtx[todo] + reg[todo, None, None] * eye)
            solution = torch.cholesky_solve(xty[todo].unsqueeze(-1), chol).squeeze(-1)
            ok = (info == 0) & torch.isfinite(solution).all(-1)
            index = todo.nonzero().squeeze(-1)
            coeffs[index[ok]] = solution[ok]
            todo[index[ok]] = False
            if not todo.any():
                self.last_reg = reg
                return coeffs
            reg = torch.where(todo, reg * 10, reg)
        raise ArithmeticError(
            f"the linear baseline's fit failed for {int(todo.sum())} task(s) even with "
            f"regularisation {reg.max().item():g}")

    def fit_predict(self, episodes: TaskEpisodes, returns: torch.Tensor) -> torch.Tensor:
        """Fit on the episodes' discounted `returns` [K, B, T]; predicted values [K, B, T]."""
        x = self.features(episodes)
        k, f = x.shape[0], x.shape[-1]
        flat = x.reshape(k, -1, f)
        y = returns.double().reshape(k, -1)
        coeffs = self.ridge_solve(flat.transpose(1, 2) @ flat,
                                  (flat.transpose(1, 2) @ y.unsqueeze(-1)).squeeze(-1))
        return (x @ coeffs.view(k, 1, f, 1)).squeeze(-1)


def fit_advantages(episodes: TaskEpisodes, baseline: LinearFeatureBaseline, gamma: float,
                   tau: float) -> TaskEpisodes:
    """Set `episodes.advantages`: GAE(gamma, tau) on the refitted baseline, normalised per
    task over the steps that happened. Returns the episodes."""
    mask = episodes.mask.double()
    rewards = episodes.rewards.double() * mask
    returns = rewards @ discount_matrix(rewards.shape[-1], gamma, rewards.device)
    values = baseline.fit_predict(episodes, returns)
    episodes.advantages = normalize(gae(rewards, values, mask, gamma, tau), mask).float()
    return episodes


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        tau: float) -> torch.Tensor:
    """Generalised advantage estimates [..., T]; the value after an episode's last step is
    0 (it ended: reached the goal, or the horizon, as in pytorch-maml-rl)."""
    values = values * mask
    next_values = torch.nn.functional.pad(values[..., 1:], (0, 1))
    deltas = (rewards + gamma * next_values - values) * mask
    return deltas @ discount_matrix(rewards.shape[-1], gamma * tau, rewards.device)


def normalize(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(values - mean) / (std + eps) per task over the masked entries, 0 elsewhere."""
    dims = tuple(range(1, values.dim()))
    count = mask.sum(dims, keepdim=True).clamp(min=1)
    mean = (values * mask).sum(dims, keepdim=True) / count
    var = (((values - mean) * mask) ** 2).sum(dims, keepdim=True) / count
    return (values - mean) / (var.sqrt() + eps) * mask
