"""A user's files and options for a network search: every mistake is one clear UserError."""

import pickle
import re

import numpy as np
import pytest
import torch

from gymlab.core.errors import UserError
from gymlab.nas.datasets import load_dataset
from gymlab.nas.evaluator import Evaluator
from gymlab.nas.search_space import load_space


def _npz(tmp_path, x=None, y=None, name="data.npz"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6, 6)).astype(np.float32) if x is None else x
    y = np.arange(40) % 4 if y is None else y
    np.savez(tmp_path / name, x=x, y=y)
    return str(tmp_path / name)


@pytest.mark.parametrize("change, message", [
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), y),
     "not finite"),
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 7, np.inf, x), y),
     "not finite"),
    (lambda x, y: (x, np.where(np.arange(40) == 3, 9, y)), "class 4 has 0 examples"),
    (lambda x, y: (x, np.where(np.arange(40) == 7, 3, np.arange(40) % 3)),
     "class 3 has 1 example"),
    (lambda x, y: (x[:, None, None], y), "expected x [N, C, H, W]"),
    (lambda x, y: (x.astype(str), y), "x must be numbers"),
    (lambda x, y: (x[:0], y[:0]), "no examples"),
])
def test_bad_npz_datasets_are_one_line_errors(tmp_path, change, message):
    x, y = change(np.random.default_rng(0).normal(size=(40, 6, 6)).astype(np.float32),
                  np.arange(40) % 4)
    with pytest.raises(UserError, match=re.escape(message)) as info:
        load_dataset("npz", _npz(tmp_path, x, y))
    assert "\n" not in str(info.value)


def test_a_good_npz_still_loads(tmp_path):
    data = load_dataset("npz", _npz(tmp_path))
    assert data.num_classes == 4 and data.input_shape == (1, 6, 6)


@pytest.mark.parametrize("options, message", [
    ({"space": "tutorial"}, "built on the space"),
    ({"dataset": "npz", "data_dir": "x.npz"}, "built on digits"),
    ({"layers": 4}, "use layers=3"),
    ({"epochs": 2}, "trained 6 epochs"),
])
def test_a_table_that_does_not_match_the_options_is_refused(options, message):
    settings = {"evaluator": "table", "layers": 3, **options}
    with pytest.raises(UserError, match=message):
        Evaluator.from_settings(**settings)


def test_the_table_defaults_and_its_own_values_are_accepted():
    table = Evaluator.from_settings(evaluator="table", layers=3, space="default",
                                    dataset="digits", epochs=6)
    assert table.epochs == 6 and len(table.space) == 9


def test_binary_cache_and_space_files_are_one_line_errors(tmp_path):
    binary = bytes(range(256)) * 4
    (tmp_path / "cache.jsonl").write_bytes(binary)
    with pytest.raises(UserError, match="not a text file"):
        Evaluator.from_settings(evaluator="table", layers=3,
                                cache_file=tmp_path / "cache.jsonl")
    (tmp_path / "space.json").write_bytes(binary)
    with pytest.raises(UserError, match="cannot read search space"):
        load_space(str(tmp_path / "space.json"))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_cifar10_batches_cannot_run_code(tmp_path):
    from tests.test_nas import fake_cifar

    folder = fake_cifar(tmp_path)
    marker = tmp_path / "pwned"
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": _RunsCode(marker), b"labels": [0]}, f)
    with pytest.raises(UserError, match="data_batch_2 is not a CIFAR-10 batch") as info:
        load_dataset("cifar10", str(tmp_path))
    assert not marker.exists()
    assert "system" in str(info.value) and "\n" not in str(info.value)


def test_cifar10_batches_pickled_by_python_2_numpy_still_load(tmp_path):
    from tests.test_nas import fake_cifar

    folder = fake_cifar(tmp_path)
    for name in ("data_batch_1", "test_batch"):  # protocol 2, as the distributed archive
        with open(folder / name, "rb") as f:
            batch = pickle.load(f)
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    data = load_dataset("cifar10", str(tmp_path), split=(0.8, 0.2, 0.0))
    assert data.input_shape == (3, 32, 32) and len(data.x_train) + len(data.x_valid) == 120


def test_digits_shifted_is_the_digits_moved_about_a_larger_canvas():
    from sklearn.datasets import load_digits

    from gymlab.nas.datasets import SPLITS, shift_onto_canvas

    data = load_dataset("digits-shifted")
    n = len(load_digits().images)
    assert data.input_shape == (1, 10, 10)
    train, valid, _ = SPLITS["digits-shifted"]
    assert (len(data.x_train), len(data.x_valid)) == (round(train * n), round(valid * n))
    assert len(data.x_train) + len(data.x_valid) + len(data.x_test) == n
    again = load_dataset("digits-shifted")
    assert torch.equal(data.x_valid, again.x_valid)  # the same offsets every time
    digits = load_digits().images[:50, None].astype(np.float32)
    moved = shift_onto_canvas(digits, 10, 0)
    assert np.allclose(moved.sum(axis=(1, 2, 3)), digits.sum(axis=(1, 2, 3)))
    rows = {int(np.argwhere(m[0] > 0)[:, 0].max()) for m in moved}
    assert max(rows) == 9 and min(rows) < 9  # some digits moved to the bottom, some not
