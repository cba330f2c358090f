"""Image classification data for candidate training: digits and digits-shifted (built in),
CIFAR-10, npz.

Data is normalised once (per-channel mean/std of the training split) and kept as float
tensors, so candidates train without a data loader.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gymlab.core.errors import UserError

DATASETS = ("digits", "digits-shifted", "cifar10", "npz")
DEFAULT_SPLIT = (0.7, 0.15, 0.15)
"""Train, valid and test fractions of a data set without a split of its own."""
SPLITS = {"digits-shifted": (0.2, 0.65, 0.15)}
"""A data set's own split: digits-shifted trains on a fifth and validates on two thirds,
so networks that generalise from few examples stand out."""
SHIFTED_CANVAS = 10
"""digits-shifted: side of the blank canvas each 8x8 digit is placed on."""
SHIFT_SEED = 0
"""digits-shifted: seed of the offsets (fixed: the data set is the same everywhere)."""
MIN_PER_CLASS = 2
"""Examples each class of a user's data set needs."""


TENSORS = ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test")


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def on(self, device: str) -> Dataset:
        """This data set with its tensors on `device` (itself when they are there)."""
        here, there = self.x_train.device, torch.device(device)
        if here == there or (there.index is None and here.type == there.type):
            return self
        return Dataset(self.name, *(getattr(self, f).to(device) for f in TENSORS),
                       self.num_classes)

    def to(self, device: str) -> Dataset:
        for field in TENSORS:
            setattr(self, field, getattr(self, field).to(device))
        return self


def load_dataset(name: str = "digits", data_dir: str | None = None, subset: int | None = None,
                 split: tuple[float, float, float] | None = None,
                 seed: int = 42) -> Dataset:
    """Load, shuffle with `seed`, keep the first `subset` examples, and split into
    train/valid/test by the fractions of `split` (none: the data set's own, see SPLITS)."""
    split = split or SPLITS.get(name, DEFAULT_SPLIT)
    if name in ("digits", "digits-shifted"):
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = digits.images[:, None].astype(np.float32), digits.target.astype(np.int64)
        if name == "digits-shifted":
            x = shift_onto_canvas(x, SHIFTED_CANVAS, SHIFT_SEED)
    elif name == "cifar10":
        x, y = read_cifar10(data_dir)
    elif name == "npz":
        x, y = read_npz(data_dir)
    else:
        raise UserError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    if len(split) != 3 or any(f < 0 for f in split) or not 0.99 < sum(split) < 1.01 \
            or split[0] <= 0 or split[1] <= 0:
        raise UserError(f"split must be three fractions (train, valid, test) summing to 1, "
                        f"with train and valid > 0; got {split}")
    order = np.random.default_rng(seed).permutation(len(x))
    if subset is not None:
        if subset < 10:
            raise UserError(f"subset must be at least 10 examples, got {subset}")
        order = order[:subset]
    x, y = x[order], y[order]
    n_train = int(round(split[0] * len(x)))
    n_valid = int(round(split[1] * len(x)))
    if n_train == 0 or n_valid == 0:
        raise UserError(f"{len(x)} examples are too few for the split {split}")
    train, valid, test = slice(0, n_train), slice(n_train, n_train + n_valid), \
        slice(n_train + n_valid, None)
    mean = x[train].mean(axis=(0, 2, 3), keepdims=True)
    std = x[train].std(axis=(0, 2, 3), keepdims=True) + 1e-6
    x = (x - mean) / std
    num_classes = int(y.max()) + 1

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    return Dataset(name, t(x[train]), t(y[train]), t(x[valid]), t(y[valid]), t(x[test]),
                   t(y[test]), num_classes)


def shift_onto_canvas(x: np.ndarray, canvas: int, seed: int) -> np.ndarray:
    """Each image [C, H, W] of `x` placed at a random offset on a zero canvas of side
    `canvas`: where a digit lies no longer tells, so convolutions and pooling must earn
    their place."""
    n, c, h, w = x.shape
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, canvas - h + 1, n), rng.integers(0, canvas - w + 1, n)
    out = np.zeros((n, c, canvas, canvas), x.dtype)
    for i, (r, q) in enumerate(zip(rows, cols)):
        out[i, :, r : r + h, q : q + w] = x[i]
    return out


def read_cifar10(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The python version of CIFAR-10 as distributed: cifar-10-batches-py/ with data_batch_1
    to data_batch_5 and test_batch, each a pickled dict of b'data' [N, 3072] uint8 and
    b'labels'. `data_dir` may point at that folder or at its parent."""
    if data_dir is None:
        raise UserError("cifar10 needs --data-dir pointing at cifar-10-batches-py/")
    root = Path(data_dir)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise UserError(f"{root} is not a CIFAR-10 python archive: missing {', '.join(missing)} "
                        "(expected data_batch_1..5 and test_batch)")
    xs, ys = [], []
    for n in names:
        try:
            with open(root / n, "rb") as f:
                batch = _BatchUnpickler(f, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as exc:
            reason = (str(exc).splitlines() or [""])[0]
            raise UserError(f"{root / n} is not a CIFAR-10 batch ({type(exc).__name__}: "
                            f"{reason}); expected a pickled dict with b'data' and "
                            f"b'labels'") from None
        if len(data) != len(labels):
            raise UserError(f"{root / n}: {len(data)} images but {len(labels)} labels")
        xs.append(data)
        ys.append(labels)
    y = np.concatenate(ys)
    _check_labels(y, root, 10)
    return np.concatenate(xs).astype(np.float32) / 255.0, y


def read_npz(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Arrays `x` [N, C, H, W] or [N, H, W] and integer labels `y` [N] in 0..K-1."""
    if path is None:
        raise UserError("npz needs --data-dir pointing at a .npz file with arrays x and y")
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y = data["x"], data["y"]
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except KeyError as exc:
        raise UserError(f"{path} needs arrays 'x' and 'y' (missing {exc})") from None
    except Exception as exc:
        raise UserError(f"cannot read {path} as .npz: {exc}") from None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
        raise UserError(f"{path}: expected x [N, C, H, W] or [N, H, W] and y [N], got "
                        f"{x.shape} and {y.shape}")
    if len(x) == 0:
        raise UserError(f"{path}: no examples (x and y are empty)")
    if not (np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x)):
        raise UserError(f"{path}: x must be numbers, got {x.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{path}: labels y must be integers, got {y.dtype}")
    x = x.astype(np.float32)
    bad = np.size(x) - int(np.isfinite(x).sum())
    if bad:
        raise UserError(f"{path}: {bad} values of x are not finite (NaN or infinite)")
    _check_labels(y, Path(path), None)
    return x, y.astype(np.int64)


def _check_labels(y: np.ndarray, where: Path, num_classes: int | None) -> None:
    """Labels in 0..K-1, each class with at least MIN_PER_CLASS examples (K: num_classes, or
    the largest label + 1)."""
    top = num_classes if num_classes is not None else int(y.max()) + 1
    if y.min() < 0 or y.max() >= top:
        raise UserError(f"{where}: labels must lie in 0..{top - 1}, found {y.min()}..{y.max()}")
    counts = np.bincount(y, minlength=top)
    rare = int(np.argmin(counts))
    if counts[rare] < MIN_PER_CLASS:
        example = "example" if counts[rare] == 1 else "examples"
        raise UserError(f"{where}: every class 0..{top - 1} needs at least {MIN_PER_CLASS} "
                        f"examples (one to train on, one to validate); class {rare} has "
                        f"{counts[rare]} {example}")


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR-10 batch holds (dicts, lists, bytes, strings, numbers and numpy
    arrays) and refuses every other global, so a crafted file cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               *((f"numpy.{core}.multiarray", name) for core in ("core", "_core")
                 for name in ("_reconstruct", "scalar"))}
    """Array reconstruction as numpy pickles it (1.x and 2.x module names); _codecs.encode
    rebuilds bytes pickled by Python 3 at protocol 2."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)
