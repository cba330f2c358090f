"""What a network search leaves behind: leaderboard.csv (with each network's fitness and
whether it is on the accuracy-vs-size Pareto fronts), best_network.json/.pt (the winner,
rebuilt and retrained with the search's seed, and the objective that chose it), report.png
(progress, the Pareto fronts, rewards, the winner as a diagram), and the leaderboard as
text."""

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
    """The best `top` distinct architectures, one line each, then the Pareto front of valid
    accuracy against parameters (smallest first)."""
    lines = [leaderboard_line(rank, c.result.best_valid_acc, c.result.params,
                              c.result.seconds, c.result.architecture)
             for rank, c in enumerate(result.leaderboard[:top], 1)]
    if not result.objective.plain:
        lines.insert(0, f"ranked by {result.objective.describe()}")
    front = result.pareto("params")
    if front:
        lines.append(f"Pareto front, valid accuracy vs parameters ({len(front)} networks):")
        lines += [f"     {c.result.best_valid_acc:6.2f}%  {c.result.params:>7} params  "
                  f"{c.result.flops:>9} FLOPs  {c.result.architecture}" for c in front]
    return lines


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
                         "train_seconds", "first_seen", "fitness", "feasible",
                         "pareto_params", "pareto_flops"])
        fronts = {size: {id(c) for c in result.pareto(size)} for size in ("params", "flops")}
        objective = result.objective
        for rank, c in enumerate(result.leaderboard, 1):
            writer.writerow([rank, c.result.architecture, " ".join(map(str, c.ids)),
                             f"{c.result.best_valid_acc:.2f}", c.result.params, c.result.flops,
                             f"{c.result.seconds:.3f}", c.index + 1,
                             f"{objective.score(c.result):.4f}",
                             int(objective.feasible(c.result)),
                             int(id(c) in fronts["params"]), int(id(c) in fronts["flops"])])
    best, data, settings = result.best, evaluator.data, evaluator.settings
    if best is not None and data is not None:  # a table has curves, not networks
        spec = {"architecture": best.result.architecture, "layer_ids": best.ids,
                "layers": [evaluator.space.choices[i].name for i in best.ids],
                "space": evaluator.space.to_json(), "input_shape": list(data.input_shape),
                "num_classes": data.num_classes, "valid_acc": best.result.best_valid_acc,
                "params": best.result.params, "flops": best.result.flops,
                "fitness": result.objective.score(best.result),
                "chosen_by": result.objective.to_json(), "test_acc": result.test_accuracy,
                "device": evaluator.device, "train": settings.__dict__}
        atomic_write_text(path / "best_network.json", json.dumps(spec, indent=2) + "\n")
        # training is deterministic for a seed: this is the network the search scored
        model = train_candidate(best.ids, evaluator.space, data, settings, keep_model=True).model
        # saved from the CPU, so it loads on a machine without a GPU
        torch.save(model.cpu().state_dict(), path / "best_network.pt")  # type: ignore
    draw_report(result, path / "report.png")
    print(f"wrote {path / 'leaderboard.csv'}, best_network.json/.pt, report.png",
          file=sys.stderr)


def draw_report(result: SearchResult, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8, 12), dpi=100)
    grid = fig.add_gridspec(4, 2, height_ratios=[3, 2.6, 2, 1.2])
    ax_acc, ax_rew, ax_net = (fig.add_subplot(grid[0, :]), fig.add_subplot(grid[2, :]),
                              fig.add_subplot(grid[3, :]))
    for column, size in enumerate(("params", "flops")):
        _draw_pareto(fig.add_subplot(grid[1, column]), result, size)
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


def _draw_pareto(ax, result: SearchResult, size: str) -> None:
    """Every leaderboard network's valid accuracy against its size (log scale), the Pareto
    front as a staircase, infeasible networks (over a cap) in grey."""
    board = result.leaderboard
    ax.set_xlabel(f"{size} (log scale)")
    ax.set_ylabel("valid accuracy (%)")
    ax.grid(alpha=0.3)
    if not board:
        return
    feasible = [result.objective.feasible(c.result) for c in board]
    for ok, colour, label in ((True, "C0", "network"), (False, "grey", "over a cap")):
        pts = [(getattr(c.result, size), c.result.best_valid_acc)
               for c, f in zip(board, feasible) if f == ok]
        if pts:
            ax.scatter(*zip(*pts), s=8, alpha=0.5, color=colour, label=label)
    front = result.pareto(size)
    ax.step([getattr(c.result, size) for c in front],
            [c.result.best_valid_acc for c in front], where="post", color="C3",
            marker="o", markersize=3, label="Pareto front")
    ax.set_xscale("log")
    ax.legend(fontsize=7, loc="lower right")


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
