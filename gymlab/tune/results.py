"""The results of a search: every trial's row, ranked best first, and the csv they are
written to."""

from __future__ import annotations

import csv
import math
import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gymlab.tune.validate import Plan
from gymlab.tune.values import exact, flag_value, metrics_text, show

COLUMNS = ("trial", "status", "outcome")
METRIC_COLUMNS = ("steps_to_solve", "eval_return", "last_eval_return", "wall_to_solve",
                  "steps", "wall_s", "run_dir", "error")


@dataclass
class TuneResults:
    """Every trial of a search, best first (failed trials last). Iterate for the rows."""

    rows: list[dict[str, Any]]
    path: Path
    plan: Plan
    searched: list[str]
    interrupted: int | None = None
    """The signal that stopped the search (SIGINT, SIGTERM), or None."""

    @property
    def metric(self) -> str:
        return self.plan.metric

    @property
    def csv(self) -> Path:
        return self.path / "tune_results.csv"

    @property
    def best(self) -> dict[str, Any] | None:
        ok = [r for r in self.rows if r["status"] in ("completed", "stopped")
              and _finite(r.get(self.metric))]
        return ok[0] if ok else None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "failed"]

    def __iter__(self) -> typing.Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def train_command(self, row: Mapping[str, Any]) -> str:
        """The `gymlab train` command line of a trial's config."""
        import shlex

        values = {**self.plan.fixed, **{k: row[k] for k in self.searched}}
        flags = [f"--{k.replace('_', '-')} {shlex.quote(flag_value(v))}"
                 for k, v in values.items()]
        return " ".join(["gymlab train", self.plan.algo, "--env", self.plan.env, *flags])

    def summary(self) -> list[str]:
        """What the CLI prints at the end: the best trial and where everything is."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        lines = []
        best = self.best
        if best is not None:
            values = " ".join(f"{k}={show(best[k])}" for k in self.searched)
            lines += [f"best: {best['trial']} {metrics_text(self.plan, best)}",
                      *([f"  {values}"] if values else []),
                      f"  run directory: {best['run_dir']}",
                      f"  train it: {self.train_command(best)}"]
        for row in self.failed[:3]:
            lines.append(f"failed: {row['trial']}: {row['error']}")
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        lines.append(f"wrote {self.csv}: {len(self.rows)} trials ({parts or 'none finished'})")
        return lines


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def rank_key(metric: str, mode: str) -> typing.Callable[[dict[str, Any]], tuple]:
    sign = 1 if mode == "min" else -1

    def key(row: dict[str, Any]) -> tuple:
        value = row.get(metric)
        if row["status"] == "failed" or not _finite(value):
            return (2, 0.0, 0.0)
        ret = row.get("eval_return")
        tie = -ret if _finite(ret) else math.inf
        solved = metric.endswith("_to_solve") and mode == "min"
        return (0 if not solved or row.get("outcome") == "solved" else 1, sign * value, tie)

    return key


def write_csv(path: Path, rows: Sequence[dict[str, Any]], searched: Sequence[str]) -> None:
    extra = [k for k in (rows[0] if rows else {}) if k not in (*COLUMNS, *searched,
                                                                   *METRIC_COLUMNS, "solved")]
    columns = [*COLUMNS, *searched, *METRIC_COLUMNS, *extra]  # extra: an algorithm's metric
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: exact(v) if isinstance(v, (tuple, dict)) else
                             ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
                             for k, v in row.items()})
    os.replace(tmp, path)
