"""MAML meta-RL with a TRPO meta-update (MAML-TRPO), on gymlab's task families.

- config.py: MAMLConfig and the published defaults per family
- policy.py: Gaussian / categorical MLP policies as functions of explicit parameters
- episodes.py: batches of K tasks x B episodes, the linear feature baseline, GAE
- samplers.py: collecting every task's episodes at once (tensor program, worker processes, Ray)
- env_workers.py: a part of the environments and its worker process (no torch)
- trpo.py: Hessian-vector products, conjugate gradient, line search
- metalearner.py: the MAML-TRPO update, top to bottom (the reference, autograd)
- fast/: the same update from hand-derived derivatives, as torch ops or C, behind one seam
- allocator.py: glibc's thresholds, so the meta-update's large tensors reuse freed memory
- trainer.py: `MAML`, a run (run directory, checkpoints, resume) and its evaluation
- evaluation.py: the adaptation curve (returns after 0, 1, ... inner steps), plotted

docs/maml.md has the derivation of the meta-update and the notes on the fast paths.
The names below are loaded on first use, so that a sampler's worker process, which imports
env_workers.py only, does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gymlab.agents.maml.config import FAMILIES, MAMLConfig
    from gymlab.agents.maml.evaluation import AdaptationCurve
    from gymlab.agents.maml.trainer import MAML

__all__ = ["MAML", "MAMLConfig", "AdaptationCurve", "FAMILIES"]
_MODULES = {"MAML": "trainer", "MAMLConfig": "config", "AdaptationCurve": "evaluation",
            "FAMILIES": "config"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"gymlab.agents.maml.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
