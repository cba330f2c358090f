"""The adaptation curve of a meta-trained policy: returns after 0, 1, 2, ... inner steps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class AdaptationCurve:
    """Mean return over tasks after 0, 1, ... inner steps, with standard errors."""

    returns: np.ndarray
    """[steps + 1, tasks]: each task's mean episode return after i steps."""
    lengths: np.ndarray
    """[steps + 1, tasks]: each task's mean episode length after i steps."""

    @property
    def mean(self) -> np.ndarray:
        return self.returns.mean(1)

    @property
    def stderr(self) -> np.ndarray:
        n = self.returns.shape[1]
        return self.returns.std(1, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(len(self.mean))

    def table(self) -> list[str]:
        return [f"after {i} step(s): {m:9.2f} ± {se:.2f}"
                for i, (m, se) in enumerate(zip(self.mean, self.stderr))]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "stderr": self.stderr.tolist(),
                "tasks": int(self.returns.shape[1]), "returns": self.returns.tolist()}

    def plot(self, out: str | Path, title: str) -> Path:
        """Mean return against inner steps, with standard-error bars, as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        steps = np.arange(len(self.mean))
        ax.errorbar(steps, self.mean, yerr=self.stderr, marker="o", capsize=4)
        ax.set_xticks(steps)
        ax.set_xlabel("policy-gradient steps on the new task")
        ax.set_ylabel(f"mean return ({self.returns.shape[1]} tasks, ± s.e.)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        out = Path(out)
        fig.savefig(out)
        plt.close(fig)
        return out
