import os
import sys

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.envs import register  # noqa: E402

register()


@pytest.fixture
def quick() -> dict:
    """Run options for fast, quiet, deterministic test runs (logdir is added per test)."""
    return {"progress": False, "eval_every": 500, "eval_episodes": 3, "log_every": 250}
