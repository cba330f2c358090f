"""Test-time step rules for a meta-trained MAML policy: the MAML paper's protocol (40 new
goals, 40 episodes per goal and step, 3 steps) on each run's final policy, with step sizes
set per step by a rule, and the mean over runs.

A rule is one entry per step, comma-separated, the last repeated:
    0.15      a policy-gradient step of that size for every goal
    k1        per goal, the step along the gradient whose mean KL (old || new) over the
              batch's states is 1 (bisection)
    0.2~2     a step of 0.2, shortened by factors of 0.8 for the goals where its mean KL
              exceeds 2

    python benchmarks/maml_test_steps.py RUN_DIR [RUN_DIR...] --rules 0.5,0.15,0.075 0.5,k1,k0.1
"""

from __future__ import annotations

import argparse
import statistics

import torch

from gymlab.agents.maml import MAML
from gymlab.agents.maml.evaluation import TEST_SEED_OFFSET, seeded
from gymlab.agents.maml.policy import forward_tasks

STEPS, TASKS, EPISODES = 3, 40, 40


def mean_kl(agent: MAML, old: dict, new: dict, batch) -> torch.Tensor:
    """Per goal, the mean KL(old || new) over the batch's steps: [K]."""
    kl = agent.policy.kl(forward_tasks(agent.policy, old, batch.obs),
                         forward_tasks(agent.policy, new, batch.obs))
    return (kl * batch.mask).sum((1, 2)) / batch.mask.sum((1, 2))


def step_lengths(agent: MAML, entry: str, base: dict, along, batch) -> torch.Tensor:
    """The step size of every goal under one rule entry."""
    if entry.startswith("k"):
        target = float(entry[1:])
        low, high = torch.zeros(TASKS), torch.full((TASKS,), 10.0)
        for _ in range(30):
            middle = (low + high) / 2
            below = mean_kl(agent, base, along(middle), batch) < target
            low, high = torch.where(below, middle, low), torch.where(below, high, middle)
        return low
    size, _, cap = entry.partition("~")
    lengths = torch.full((TASKS,), float(size))
    for _ in range(40 if cap else 0):
        over = mean_kl(agent, base, along(lengths), batch) > float(cap)
        lengths = torch.where(over, lengths * 0.8, lengths)
    return lengths


def curve(agent: MAML, rule: list[str]) -> list[float]:
    """Mean return over the goals after 0..STEPS steps (the goals and sampling seeded as
    MAML.adaptation_curve seeds them)."""
    with seeded(agent, agent.run_config.seed + TEST_SEED_OFFSET):
        goals = agent.family.unwrapped.sample_tasks(TASKS, agent.task_rng)
        shared = {k: v.detach().expand(TASKS, *v.shape)
                  for k, v in agent.policy.named_parameters()}
        adapted, means = None, []
        for step in range(STEPS + 1):
            batch = agent.sample(goals, EPISODES, adapted)
            means.append(batch.returns.mean(1).mean().item())
            if step == STEPS:
                break
            base = shared if adapted is None else {k: v.detach() for k, v in adapted.items()}
            unit = agent.adapted(adapted, batch, 1.0)  # the step of size 1: its direction
            direction = {k: unit[k].detach() - base[k] for k in base}

            def along(lengths: torch.Tensor, base=base, direction=direction) -> dict:
                return {k: base[k] + lengths.view(-1, *[1] * (base[k].dim() - 1)) * direction[k]
                        for k in base}

            with torch.no_grad():
                lengths = step_lengths(agent, rule[step], base, along, batch)
                adapted = {k: v.clone().requires_grad_() for k, v in along(lengths).items()}
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--rules", nargs="+", default=["0.5,0.15,0.075"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for text in args.rules:
        rule = text.split(",")
        rule = (rule + rule[-1:] * STEPS)[:STEPS]
        rows = []
        for run in args.runs:
            with MAML.load(f"{run}/checkpoints/last.pt") as agent:
                rows.append(curve(agent, rule))
            print(f"{text:24s} {run}: " + " | ".join(f"{m:7.2f}" for m in rows[-1]), flush=True)
        print(f"{text:24s} mean over {len(rows)} runs: " + " | ".join(
            f"{statistics.fmean(col):7.2f}" for col in zip(*rows)), flush=True)


if __name__ == "__main__":
    main()
