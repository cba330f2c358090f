"""Seeding every generator of a run, and their states as checkpoint-safe values."""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def seed_everything(seed: int, torch_threads: int, torch: bool = True) -> None:
    """Seed python's and numpy's global generators, and torch's (with its thread count)
    unless `torch` is false: runs that never use torch do not pay for its import."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    if torch:
        import torch as torch_module

        torch_module.manual_seed(seed)
        torch_module.set_num_threads(torch_threads)


def rng_states(torch: bool = True) -> dict[str, Any]:
    """The global generators' states (python, numpy legacy, and torch unless `torch` is
    false), loadable weights-only."""
    import numpy as np

    states: dict[str, Any] = {
        "python": json.dumps(random.getstate()),
        "numpy": json.dumps(_jsonable(np.random.get_state(legacy=False))),
    }
    if torch:
        import torch as torch_module

        states["torch"] = torch_module.get_rng_state()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what rng_states saved (torch's only where it was saved)."""
    import numpy as np

    version, internal, gauss = json.loads(states["python"])
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(json.loads(states["numpy"]))
    if "torch" in states:
        import torch

        torch.set_rng_state(states["torch"])


def generator_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def set_generator_state(rng: np.random.Generator, state: str) -> None:
    rng.bit_generator.state = json.loads(state)


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value
