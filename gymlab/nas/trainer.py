"""Train one candidate network and record its learning curves."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from gymlab.nas.builder import build_network
from gymlab.nas.datasets import Dataset
from gymlab.nas.search_space import SearchSpace

METRICS = ("train_loss", "valid_loss", "valid_acc")
"""The per-epoch curves of a trained candidate."""
EVAL_BATCH = 1024
"""Examples per forward pass when validating (bounds the memory of a large split)."""
METRIC_CAP = 100.0
"""Losses are clipped here, and NaN/inf become it, so one diverged candidate cannot blow up
an observation or a reward."""


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 6
    """Epochs whose metrics are recorded."""
    warmup_epochs: int = 1
    """Epochs trained first whose metrics are skipped (first-epoch values are outliers)."""
    lr: float = 1e-3
    """Optimizer step size."""
    batch_size: int = 32
    """Examples per gradient step."""
    optimizer: Literal["radam", "adam", "sgd"] = "radam"
    """Candidate optimizer."""
    criterion: Literal["cross_entropy", "mse"] = "cross_entropy"
    """Loss: cross-entropy, or MSE on one-hot targets (the tutorial's)."""
    max_params: int | None = None
    """Candidates with more parameters fail without training (none: no cap)."""
    max_flops: int | None = None
    """Candidates with more FLOPs (one example's forward pass) fail without training (none:
    no cap)."""
    mixed_precision: bool = True
    """On CUDA, run forward passes under autocast (bfloat16, or float16 with loss scaling
    where the GPU lacks bfloat16); on CPU, full precision always."""
    max_train_seconds: float | None = None
    """Training stops and the candidate fails past this many seconds (none: no cap)."""
    seed: int = 0
    """Seed of the weights' initialisation and of the minibatch order."""


@dataclass
class CandidateResult:
    architecture: str
    built: bool
    reason: str = ""
    params: int = 0
    flops: int = 0
    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    valid_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0
    model: torch.nn.Module | None = field(default=None, repr=False)
    """The trained network, kept only when asked for (`keep_model=True`)."""

    @property
    def ok(self) -> bool:
        """Built and trained to the end."""
        return self.built and not self.reason

    @property
    def best_valid_acc(self) -> float:
        return max(self.valid_acc) if self.valid_acc else 0.0


def _cap(value: float) -> float:
    return METRIC_CAP if not math.isfinite(value) else min(value, METRIC_CAP)


def train_candidate(ids: Sequence[int], space: SearchSpace, data: Dataset,
                    settings: TrainSettings, keep_model: bool = False) -> CandidateResult:
    """Build the network of `ids`, train it on the device its data lies on, and record
    per-epoch train loss, valid loss and valid accuracy (in %). Failures (not buildable,
    over a cap, out of memory) come back as a result with `reason` set, never as an
    exception. The caller's global torch generator is left as it was: an RL searcher
    sampling from it must not depend on where candidates train (here, or in a worker
    process)."""
    with torch.random.fork_rng(devices=[]):
        return _train_candidate(ids, space, data, settings, keep_model)


def _train_candidate(ids: Sequence[int], space: SearchSpace, data: Dataset,
                     settings: TrainSettings, keep_model: bool) -> CandidateResult:
    torch.manual_seed(settings.seed)
    build = build_network(ids, space, data.input_shape, data.num_classes)
    result = CandidateResult(space.describe(ids), build.built, build.reason, build.params,
                             build.flops)
    if not build.built:
        return result
    if settings.max_params is not None and build.params > settings.max_params:
        result.reason = f"{build.params} parameters exceed max_params={settings.max_params}"
        return result
    if settings.max_flops is not None and build.flops > settings.max_flops:
        result.reason = f"{build.flops} FLOPs exceed max_flops={settings.max_flops}"
        return result
    model = build.model.to(data.x_train.device)  # type: ignore[union-attr]
    optimizers = {"radam": torch.optim.RAdam, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    optimizer = optimizers[settings.optimizer](model.parameters(), lr=settings.lr)
    generator = torch.Generator().manual_seed(settings.seed)
    precision = Precision(data.x_train.device, settings.mixed_precision)
    start = time.perf_counter()
    try:
        for epoch in range(settings.warmup_epochs + settings.epochs):
            train_loss = _train_epoch(model, optimizer, data, settings, generator, precision)
            if epoch < settings.warmup_epochs:
                continue
            valid_loss, valid_acc = _evaluate(model, data.x_valid, data.y_valid, data.num_classes,
                                              settings.criterion, precision)
            result.train_loss.append(_cap(train_loss))
            result.valid_loss.append(_cap(valid_loss))
            result.valid_acc.append(valid_acc)
            if (settings.max_train_seconds is not None
                    and time.perf_counter() - start > settings.max_train_seconds):
                result.reason = f"training exceeded max_train_seconds={settings.max_train_seconds}"
                break
    except (RuntimeError, MemoryError) as exc:  # e.g. out of memory on a huge candidate
        result.reason = f"training failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    result.seconds = time.perf_counter() - start
    if keep_model:
        result.model = model
    return result


class Precision:
    """Mixed precision on CUDA: autocast to bfloat16 where the GPU has it, else float16 with
    a gradient scaler (float16 gradients underflow without one). Elsewhere a no-op."""

    def __init__(self, device: torch.device, enabled: bool = True) -> None:
        self.enabled = enabled and device.type == "cuda"
        self.dtype = torch.bfloat16
        if self.enabled and not torch.cuda.is_bf16_supported():
            self.dtype = torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled
                                           and self.dtype == torch.float16)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        with torch.autocast("cuda", dtype=self.dtype):
            yield

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def _loss(logits: torch.Tensor, y: torch.Tensor, num_classes: int, criterion: str) -> torch.Tensor:
    if criterion == "mse":
        return F.mse_loss(logits, F.one_hot(y, num_classes).float())
    return F.cross_entropy(logits, y)


def _train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: Dataset,
                 settings: TrainSettings, generator: torch.Generator,
                 precision: Precision) -> float:
    model.train()
    order = torch.randperm(len(data.x_train), generator=generator).to(data.x_train.device)
    # summed on the device: reading each batch's loss would wait for the GPU every step
    total = torch.zeros((), device=data.x_train.device)
    for start in range(0, len(order), settings.batch_size):
        idx = order[start : start + settings.batch_size]
        with precision.autocast():
            logits = model(data.x_train[idx])
        loss = _loss(logits.float(), data.y_train[idx], data.num_classes, settings.criterion)
        precision.step(loss, optimizer)
        total += loss.detach() * len(idx)
    return total.item() / len(order)


def _evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
              criterion: str, precision: Precision | None = None) -> tuple[float, float]:
    model.eval()
    loss, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
    with torch.no_grad():
        for start in range(0, len(x), EVAL_BATCH):
            xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
            with precision.autocast() if precision else contextlib.nullcontext():
                logits = model(xb).float()
            loss += _loss(logits, yb, num_classes, criterion) * len(xb)
            correct += (logits.argmax(1) == yb).sum()
    return loss.item() / len(x), correct.item() / len(x) * 100.0
