"""Learning curves of one or more runs, from their progress.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gymlab.core.errors import UserError
from gymlab.core.logger import plural, read_progress


def plot_runs(run_dirs: list[str | Path], out: str | Path, smooth: int = 20) -> Path:
    """Episodic return (raw, faint, and a moving average) against steps for every run, with
    evaluation means and their std as marked points; one colour per run. Runs whose
    algorithm scores itself (a network search's best accuracy, MAML's after-update return)
    plot that score against their unit (candidates, meta-batches)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    units, scores = set(), set()
    for i, run_dir in enumerate(map(Path, run_dirs)):
        progress = run_dir / "progress.jsonl"
        if not progress.is_file():
            raise UserError(f"{run_dir} has no progress.jsonl to plot")
        records = read_progress(progress)
        if not any("episode/return" in r or "eval/return_mean" in r for r in records):
            raise UserError(f"{run_dir} has no returns or scores to plot yet")
        unit, score = _axes(run_dir)
        units.add(unit)
        scores.add(score)
        color = f"C{i}"
        label = run_dir.name
        episodes = [(r["step"], r["episode/return"]) for r in records if "episode/return" in r]
        if episodes:
            steps, returns = map(np.asarray, zip(*episodes))
            ax.plot(steps, returns, color=color, alpha=0.2, linewidth=0.8)
            k = min(smooth, len(returns))
            ax.plot(steps[k - 1:], np.convolve(returns, np.ones(k) / k, mode="valid"),
                    color=color, label=f"{label} (episodes, mean of {k})")
        evals = [(r["step"], r["eval/return_mean"], r["eval/return_std"])
                 for r in records if "eval/return_mean" in r]
        if evals:
            steps, means, stds = map(np.asarray, zip(*evals))
            if unit == "step":
                ax.errorbar(steps, means, yerr=stds, fmt="o", color=color, markersize=4,
                            capsize=2, label=f"{label} (evaluation)")
            else:  # a score per iteration: a curve
                ax.plot(steps, means, color=color, marker=".", label=f"{label} ({score})")
    ax.set_xlabel("environment steps" if units == {"step"} else " / ".join(
        plural(unit) for unit in sorted(units)))
    ax.set_ylabel("episodic return" if scores == {"eval_return"} else " / ".join(
        sorted(scores)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _axes(run_dir: Path) -> tuple[str, str]:
    """The run's progress unit and score name, from its config.json."""
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return "step", "eval_return"
    return config.get("unit", "step"), config.get("score", "eval_return")
