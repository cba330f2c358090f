"""The NAS evaluator that environments use (not are), and the nas package's layering."""

import ast
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import gymlab.nas  # noqa: F401  registers gymlab/NAS-v0
from gymlab.core.errors import UserError
from gymlab.nas.evaluator import Evaluator
from tests.processes import workers_left_after_kill
from tests.test_layers import imports

ROOT = Path(__file__).resolve().parents[1] / "gymlab"


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator.from_settings("digits", subset=200, layers=3, epochs=1)


def test_envs_of_one_search_share_one_evaluator(evaluator):
    seen = []
    evaluator.on_result = lambda ids, result, hit, reward: seen.append((ids, hit, reward))
    one = gym.make("gymlab/NAS-v0", evaluator=evaluator, layers=3)
    two = gym.make("gymlab/NAS-v0", evaluator=evaluator, layers=3)
    one.reset(seed=0)
    two.reset(seed=0)
    _, reward, _, _, info = one.step(np.array([0, 6, 8]))
    assert info["built"] and one.unwrapped.last_cache_hit is False
    two.step(np.array([0, 8, 6]))  # the same network, trained by the other env
    assert two.unwrapped.last_cache_hit is True
    assert seen == [([0, 6, 8], False, reward), ([0, 8, 6], True, 1.0)]
    evaluator.on_result = None


def test_an_env_built_from_settings_has_its_own_evaluator():
    env = gym.make("gymlab/NAS-v0", epochs=1, layers=3, subset=200)
    other = gym.make("gymlab/NAS-v0", epochs=1, layers=3, subset=200)
    assert env.unwrapped.evaluator is not other.unwrapped.evaluator
    env.reset(seed=0)
    env.step(np.array([0, 6, 8]))
    other.reset(seed=0)
    other.step(np.array([0, 6, 8]))
    assert other.unwrapped.last_cache_hit is False  # nothing shared
    other.unwrapped.share(env.unwrapped.evaluator)
    other.step(np.array([0, 6, 8]))
    assert other.unwrapped.last_cache_hit is True


def test_the_cache_file_keeps_trained_results(tmp_path):
    cache = tmp_path / "cache.jsonl"
    first = Evaluator.from_settings("digits", subset=200, layers=3, epochs=1, cache_file=cache)
    result, hit = first.evaluate([0, 6, 8])
    assert not hit and len(cache.read_text().splitlines()) == 1
    again = Evaluator.from_settings("digits", subset=200, layers=3, epochs=1, cache_file=cache)
    same, hit = again.evaluate([0, 8, 6])
    assert hit and same.valid_loss == result.valid_loss


def test_a_table_evaluator_answers_shortened_curves_in_a_halving_round():
    table = Evaluator.from_settings(evaluator="table", layers=3, halving_epochs=1,
                                    halving_eta=2)
    batch = [[0, 1, 2], [3, 4, 5], [6, 7, 0], [1, 1, 1]]
    table.prepare_round(batch)
    lengths = [len(table.evaluate(ids)[0].valid_acc) for ids in batch]
    # rungs 1, 2, 4, 6 epochs: two stop at 1, one at 2, the best is trained fully
    assert table.epochs == 6 and sorted(lengths) == [1, 1, 2, 6]
    with pytest.raises(UserError, match="evaluator must be train or table"):
        Evaluator.from_settings(evaluator="oracle")


def test_only_the_package_imports_the_search_and_ray_loads_lazily():
    # the package-wide layering is tests/test_layers.py's; these are NAS's own rules
    for path in (ROOT / "nas").glob("*.py"):
        if path.name not in ("__init__.py", "search.py"):
            assert "gymlab.nas.search" not in imports(path), path  # no loop to the search
    ray_helpers = ROOT / "core" / "ray.py"
    top_level = set()
    for node in ast.parse(ray_helpers.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            top_level.add(node.module)
        elif isinstance(node, ast.Import):
            top_level.update(alias.name for alias in node.names)
    assert not any(m == "ray" or m.startswith("ray.") for m in top_level)  # only in functions


def test_importing_the_package_does_not_import_torch():
    code = "import sys, gymlab.nas; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


KILLED_PARENT = """
from gymlab.nas.evaluator import Evaluator

if __name__ == "__main__":
    evaluator = Evaluator.from_settings("digits", subset=100, layers=2, epochs=1, workers=2)
    evaluator.prefetch([[0, 1], [1, 0]])
    print(*evaluator.pool.executor._processes, flush=True)
    input()  # wait to be killed
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_candidate_workers_exit_when_the_search_is_killed():
    assert workers_left_after_kill(KILLED_PARENT, ROOT.parent, workers=2) == []
