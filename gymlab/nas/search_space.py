"""The layer choices an agent picks from: an ordered, named list; an action id indexes it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gymlab.core.errors import UserError

LAYER_KINDS = ("conv", "dropout", "batchnorm", "maxpool", "avgpool", "none")


@dataclass(frozen=True)
class LayerSpec:
    """One layer choice. `conv` is followed by ReLU; `none` adds nothing (variable depth)."""

    kind: str
    kernel: int = 0
    """conv: kernel side; maxpool/avgpool: window and stride."""
    channels: int = 0
    """conv: output channels."""
    padding: int = 0
    """conv: zero padding on each side (kernel // 2 keeps the feature map's size)."""
    p: float = 0.0
    """dropout: probability of zeroing a channel."""

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise UserError(f"unknown layer type {self.kind!r} (known: {', '.join(LAYER_KINDS)})")
        if self.kind == "conv" and (self.kernel < 1 or self.channels < 1 or self.padding < 0):
            raise UserError(f"conv needs kernel >= 1, channels >= 1, padding >= 0: {self}")
        if self.kind in ("maxpool", "avgpool") and self.kernel < 1:
            raise UserError(f"{self.kind} needs kernel >= 1: {self}")
        if self.kind == "dropout" and not 0.0 <= self.p < 1.0:
            raise UserError(f"dropout needs 0 <= p < 1, got {self.p}")

    @property
    def name(self) -> str:
        if self.kind == "conv":
            pad = "" if self.padding == self.kernel // 2 else f"p{self.padding}"
            return f"conv{self.kernel}x{self.kernel}-{self.channels}{pad}"
        if self.kind == "dropout":
            return f"dropout{self.p:g}"
        if self.kind in ("maxpool", "avgpool"):
            return f"{self.kind}{self.kernel}"
        return self.kind


@dataclass(frozen=True)
class SearchSpace:
    name: str
    choices: tuple[LayerSpec, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise UserError(f"search space {self.name!r} has no layer choices")

    def __len__(self) -> int:
        return len(self.choices)

    def describe(self, ids: Sequence[int]) -> str:
        """A readable architecture string, `none` layers left out."""
        names = [self.choices[i].name for i in ids if self.choices[i].kind != "none"]
        return " > ".join(names) if names else "(empty)"

    def canonical(self, ids: Sequence[int]) -> tuple[str, ...]:
        """The layers that matter, in order: two id lists with the same canonical form
        build the same network (the evaluation cache's key)."""
        return tuple(self.choices[i].name for i in ids if self.choices[i].kind != "none")

    def to_json(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in asdict(c).items() if v or k == "kind"} for c in self.choices]


def _conv(k: int, c: int, padding: int | None = None) -> LayerSpec:
    return LayerSpec("conv", kernel=k, channels=c, padding=k // 2 if padding is None else padding)


SPACES: dict[str, SearchSpace] = {
    # padded convolutions: almost every list builds, even on 8x8 digits
    "default": SearchSpace("default", (
        _conv(3, 16), _conv(3, 32), _conv(5, 16),
        LayerSpec("dropout", p=0.1), LayerSpec("dropout", p=0.2), LayerSpec("batchnorm"),
        LayerSpec("maxpool", kernel=2), LayerSpec("avgpool", kernel=2), LayerSpec("none"),
    )),
    # the tutorial's setting: valid 5x5 convolutions with few channels; many lists cannot build
    "tutorial": SearchSpace("tutorial", (
        _conv(5, 1, 0), _conv(5, 2, 0), _conv(5, 8, 0), _conv(5, 16, 0),
        LayerSpec("dropout", p=0.1), LayerSpec("dropout", p=0.2), LayerSpec("batchnorm"),
        LayerSpec("maxpool", kernel=2), LayerSpec("none"),
    )),
}


def load_space(spec: str | Sequence[dict[str, Any]]) -> SearchSpace:
    """A named space (`default`, `tutorial`), a JSON/YAML file of layer specs, or a list of
    layer-spec dicts such as `{"kind": "conv", "kernel": 3, "channels": 16, "padding": 1}`."""
    if isinstance(spec, str):
        if spec in SPACES:
            return SPACES[spec]
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"unknown search space {spec!r}: not one of "
                            f"{', '.join(SPACES)} and not a file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read search space {path}: not a UTF-8 text file "
                            f"({type(exc).__name__})") from None
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                items = yaml.safe_load(text)
            else:
                items = json.loads(text)
        except Exception as exc:  # any parser's error is the user's malformed file
            raise UserError(f"cannot read search space {path}: {exc}") from None
        return _from_list(path.stem, items)
    return _from_list("custom", spec)


def _from_list(name: str, items: Any) -> SearchSpace:
    if not isinstance(items, list) or not items:
        raise UserError(f"search space {name!r} must be a non-empty list of layer specs")
    choices = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "kind" not in item:
            raise UserError(f"layer {i} of search space {name!r} needs a 'kind': {item!r}")
        unknown = set(item) - {"kind", "kernel", "channels", "padding", "p"}
        if unknown:
            raise UserError(f"layer {i} of search space {name!r}: unknown argument(s) "
                            f"{', '.join(sorted(unknown))}")
        try:
            choices.append(LayerSpec(**item))
        except TypeError as exc:
            raise UserError(f"layer {i} of search space {name!r}: {exc}") from None
    return SearchSpace(name, tuple(choices))
