"""What a network search leaves behind: leaderboard.csv, best_network.json/.pt (the winner,
rebuilt and retrained with the search's seed), report.png (progress, rewards, the winner as a
diagram), and the leaderboard as text."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from gymlab.core.run import atomic_write_text
from gymlab.nas.evaluator import Evaluator
from gymlab.nas.results import SearchResult
from gymlab.nas.trainer import train_candidate


def leaderboard_lines(result: SearchResult, top: int = 10) -> list[str]:
    """The best `top` distinct architectures, one line each."""
    return [leaderboard_line(rank, c.result.best_valid_acc, c.result.params, c.result.seconds,
                             c.result.architecture)
            for rank, c in enumerate(result.leaderboard[:top], 1)]


def leaderboard_line(rank: int, valid_acc: float, params: int, seconds: float,
                     architecture: str) -> str:
    return f"{rank:>3}. {valid_acc:6.2f}%  {params:>7} params  {seconds:5.2f}s  {architecture}"


def write_outputs(path: Path, result: SearchResult, evaluator: Evaluator) -> None:
    """leaderboard.csv, best_network.json and .pt (when networks were trained, not looked
    up), report.png."""
    import torch

    with open(path / "leaderboard.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "architecture", "layer_ids", "valid_acc", "params", "flops",
                         "train_seconds", "first_seen"])
        for rank, c in enumerate(result.leaderboard, 1):
            writer.writerow([rank, c.result.architecture, " ".join(map(str, c.ids)),
                             f"{c.result.best_valid_acc:.2f}", c.result.params, c.result.flops,
                             f"{c.result.seconds:.3f}", c.index + 1])
    best, data, settings = result.best, evaluator.data, evaluator.settings
    if best is not None and data is not None:  # a table has curves, not networks
        spec = {"architecture": best.result.architecture, "layer_ids": best.ids,
                "layers": [evaluator.space.choices[i].name for i in best.ids],
                "space": evaluator.space.to_json(), "input_shape": list(data.input_shape),
                "num_classes": data.num_classes, "valid_acc": best.result.best_valid_acc,
                "test_acc": result.test_accuracy, "train": settings.__dict__}
        atomic_write_text(path / "best_network.json", json.dumps(spec, indent=2) + "\n")
        # training is deterministic for a seed: this is the network the search scored
        model = train_candidate(best.ids, evaluator.space, data, settings, keep_model=True).model
        torch.save(model.state_dict(), path / "best_network.pt")  # type: ignore[union-attr]
    draw_report(result, path / "report.png")
    print(f"wrote {path / 'leaderboard.csv'}, best_network.json/.pt, report.png",
          file=sys.stderr)


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
