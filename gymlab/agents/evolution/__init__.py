"""Neuroevolution: a genetic algorithm (`GA`) and evolution strategies (`ES`) that evolve MLP
policy weights with forward passes only, evaluated in large batches and in parallel.

    ga.py / es.py    the algorithms, each with its config and its ask/tell strategy
    agent.py         what both share: the generation loop, checkpoints, acting
    policy.py        flat parameter vectors and the batched forward pass (numpy)
    vector_envs.py   environments stepped as a batch that drops finished episodes
    rollout.py       lockstep evaluation of a population with compaction
    parallel.py      the same over worker processes or a Ray cluster

None of it imports torch (checkpoints are numpy's, gymlab.core.checkpoints), so a run and
its worker processes start fast. The agent classes are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gymlab.agents.evolution.es import ES
    from gymlab.agents.evolution.ga import GA

__all__ = ["ES", "GA"]


def __getattr__(name: str) -> Any:
    if name == "GA":
        from gymlab.agents.evolution.ga import GA

        return GA
    if name == "ES":
        from gymlab.agents.evolution.es import ES

        return ES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
