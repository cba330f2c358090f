"""Layer ids -> an nn.Sequential CNN, or "not built" with the reason. Never raises."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gymlab.nas.search_space import SearchSpace


@dataclass
class BuildResult:
    model: nn.Sequential | None
    reason: str = ""
    params: int = 0
    flops: int = 0
    """Multiply-adds x 2 of one forward pass of a single example."""

    @property
    def built(self) -> bool:
        return self.model is not None


def build_network(ids: Sequence[int], space: SearchSpace, input_shape: tuple[int, int, int],
                  num_classes: int) -> BuildResult:
    """The CNN of `ids` for inputs [C, H, W]; the head is Flatten + Linear(num_classes).
    Shapes are followed layer by layer, so a list that cannot be built (a feature map smaller
    than a kernel) is reported with the reason instead of failing in a forward pass."""
    try:
        return _build(ids, space, input_shape, num_classes)
    except Exception as exc:  # a "not built" candidate must never stop a search
        return BuildResult(None, f"{type(exc).__name__}: {exc}")


def _build(ids: Sequence[int], space: SearchSpace, input_shape: tuple[int, int, int],
           num_classes: int) -> BuildResult:
    c, h, w = input_shape
    layers: list[nn.Module] = []
    flops = 0
    for position, i in enumerate(ids):
        if not 0 <= int(i) < len(space):
            return BuildResult(None, f"layer id {i} is outside the space's 0..{len(space) - 1}")
        spec = space.choices[int(i)]
        if spec.kind == "conv":
            k, pad = spec.kernel, spec.padding
            if h + 2 * pad < k or w + 2 * pad < k:
                return BuildResult(None, f"layer {position} ({spec.name}): the {h}x{w} feature "
                                         f"map is smaller than the {k}x{k} kernel")
            h, w = h + 2 * pad - k + 1, w + 2 * pad - k + 1
            layers += [nn.Conv2d(c, spec.channels, k, padding=pad), nn.ReLU()]
            flops += 2 * k * k * c * spec.channels * h * w
            c = spec.channels
        elif spec.kind in ("maxpool", "avgpool"):
            k = spec.kernel
            if h < k or w < k:
                return BuildResult(None, f"layer {position} ({spec.name}): the {h}x{w} feature "
                                         f"map is smaller than the {k}x{k} window")
            h, w = h // k, w // k
            layers.append(nn.MaxPool2d(k) if spec.kind == "maxpool" else nn.AvgPool2d(k))
            flops += c * h * w * k * k
        elif spec.kind == "dropout":
            layers.append(nn.Dropout2d(spec.p))
        elif spec.kind == "batchnorm":
            layers.append(nn.BatchNorm2d(c))
            flops += 2 * c * h * w
    features = c * h * w
    layers += [nn.Flatten(), nn.Linear(features, num_classes)]
    flops += 2 * features * num_classes
    model = nn.Sequential(*layers)
    params = sum(p.numel() for p in model.parameters())
    return BuildResult(model, "", params, flops)


def check_forward(result: BuildResult, input_shape: tuple[int, int, int], batch: int = 2) -> bool:
    """Whether the built model maps a [batch, C, H, W] batch to [batch, num_classes]."""
    assert result.model is not None
    with torch.no_grad():
        out = result.model.eval()(torch.zeros(batch, *input_shape))
    return out.shape[0] == batch
