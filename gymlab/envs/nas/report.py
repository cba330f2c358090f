"""report.png of a network search: progress, rewards, and the winner drawn as a diagram."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gymlab.nas import SearchResult


def draw_report(result: SearchResult, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_rew, ax_net) = plt.subplots(
        3, 1, figsize=(8, 9), dpi=100, gridspec_kw={"height_ratios": [3, 2, 1.2]})
    n = np.arange(1, len(result.candidates) + 1)
    acc = np.array([c.result.best_valid_acc if c.result.ok else np.nan
                    for c in result.candidates])
    ax_acc.scatter(n, acc, s=8, alpha=0.5, label="candidate (best valid acc)")
    ax_acc.plot(n, np.fmax.accumulate(np.nan_to_num(acc, nan=0.0)), color="C3",
                label="best so far")
    failed = [c.index + 1 for c in result.candidates if not c.result.ok]
    if failed:
        ax_acc.scatter(failed, np.zeros(len(failed)), marker="x", color="grey", s=12,
                       label="not built")
    ax_acc.set_xlabel("candidates")
    ax_acc.set_ylabel("valid accuracy (%)")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(fontsize=8, loc="lower right")
    rewards = np.array([c.reward for c in result.candidates])
    ax_rew.plot(n, rewards, ".", markersize=3, alpha=0.5)
    k = min(10, len(rewards))
    if k:
        ax_rew.plot(n[k - 1:], np.convolve(rewards, np.ones(k) / k, "valid"), color="C1",
                    label=f"mean of {k}")
        ax_rew.legend(fontsize=8)
    ax_rew.set_xlabel("candidates")
    ax_rew.set_ylabel("reward")
    ax_rew.grid(alpha=0.3)
    _draw_network(ax_net, result)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def _draw_network(ax, result: SearchResult) -> None:
    ax.axis("off")
    best = result.best
    if best is None:
        ax.text(0.5, 0.5, "no network was built", ha="center", va="center")
        return
    boxes = ["input", *best.result.architecture.split(" > "), "flatten + linear"]
    if best.result.architecture == "(empty)":
        boxes = ["input", "flatten + linear"]
    width = 1.0 / len(boxes)
    for i, name in enumerate(boxes):
        x = (i + 0.5) * width
        ax.text(x, 0.5, name, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "#dde8f5" if 0 < i < len(boxes) - 1
                      else "#eeeeee"})
        if i:
            ax.annotate("", xy=(x - 0.5 * width + 0.01, 0.5),
                        xytext=(x - width + 0.5 * width - 0.01, 0.5),
                        arrowprops={"arrowstyle": "->"})
    ax.set_title(f"best: {best.result.best_valid_acc:.2f}% valid, {best.result.params} params",
                 fontsize=9)
