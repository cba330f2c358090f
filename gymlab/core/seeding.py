"""Seeding every generator of a run, and their states as checkpoint-safe values."""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def seed_everything(seed: int, torch_threads: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(torch_threads)


def rng_states() -> dict[str, Any]:
    """The global generators' states (python, numpy legacy, torch), loadable weights-only."""
    import numpy as np
    import torch

    return {
        "python": json.dumps(random.getstate()),
        "numpy": json.dumps(_jsonable(np.random.get_state(legacy=False))),
        "torch": torch.get_rng_state(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = json.loads(states["python"])
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(json.loads(states["numpy"]))
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
