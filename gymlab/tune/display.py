"""The live view of a search: a table of the trials on a terminal, one line per event
otherwise."""

from __future__ import annotations

import time
import typing
from collections.abc import Mapping
from typing import Any, Protocol

from gymlab.tune.plan import Plan
from gymlab.tune.results import TuneResults
from gymlab.tune.values import decode, metrics_text, show, show_number


class SearchView(Protocol):
    """What the display reads of a running search (gymlab.tune.search.Search)."""

    plan: Plan
    searched: list[str]
    names: dict[str, str]
    trials: dict[str, Any]
    started: float

    def results(self) -> TuneResults: ...


class Display:
    """On a terminal: a table of the trials redrawn in place, at most once a second. Otherwise:
    one line per trial that starts or ends, and a status line every 30 s."""

    def __init__(self, search: SearchView, stream: typing.TextIO) -> None:
        self.search, self.stream = search, stream
        self.tty = stream.isatty()
        self.drawn = 0  # lines of the table on screen
        self.last_draw = 0.0
        self.last_status = time.perf_counter()

    def say(self, line: str) -> None:
        self._erase()
        print(line, file=self.stream, flush=True)

    def _erase(self) -> None:
        if self.tty and self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _values(self, config: Mapping[str, Any]) -> str:
        return " ".join(f"{k}={show(decode(self.search.plan, k, config.get(k)))}"
                        for k in self.search.searched)

    def started(self, trial: Any) -> None:
        if not self.tty:
            name = self.search.names.get(trial.trial_id, trial.trial_id)
            self.say(f"{name} started: {self._values(trial.config)}".rstrip(": "))

    def ended(self, row: dict[str, Any]) -> None:
        if self.tty:
            return
        if row["status"] == "failed":
            self.say(f"{row['trial']} FAILED: {row['error']}")
        else:
            what = row["outcome"] if row["status"] == "completed" else row["status"]
            self.say(f"{row['trial']} {what}: "
                     f"{metrics_text(self.search.plan, row)}")

    def tick(self, trials: list) -> None:
        now = time.perf_counter()
        if self.tty and now - self.last_draw >= 1.0:
            self.last_draw = now
            self._erase()
            lines = self.table(trials)
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
            self.drawn = len(lines)
        elif not self.tty and now - self.last_status >= 30.0:
            self.last_status = now
            self.say(self.status(trials))

    def status(self, trials: list, results: TuneResults | None = None) -> str:
        results = results or self.search.results()
        counts: dict[str, int] = {}
        for row in results.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        pending = len(trials) - len(results.rows)
        if pending > 0:
            counts["pending"] = pending
        elapsed = time.perf_counter() - self.search.started
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        text = f"[{_clock(elapsed)}] {parts}"
        if results.best:
            text += f"; best {results.best['trial']}: " + metrics_text(
                self.search.plan, results.best)
        return text

    def table(self, trials: list, limit: int = 20) -> list[str]:
        """Running trials, then finished ones best first, then pending ones."""
        plan = self.search.plan
        keys = self.search.searched
        results = self.search.results()
        started = {row["trial"] for row in results.rows}
        rows = sorted(results.rows, key=lambda r: r["status"] != "running")
        pending = [{"trial": self.search.names.get(t.trial_id, "-"), "status": "pending",
                    **{k: decode(plan, k, t.config.get(k)) for k in keys}}
                   for t in trials if self.search.names.get(t.trial_id) not in started]
        header = ["trial", "status", *keys, "steps", "eval_return", plan.metric]
        cells = [[row["trial"], row["outcome"] if row["status"] == "completed" else
                  row["status"], *(show(row.get(k)) for k in keys), show_number(row.get("steps")),
                  show_number(row.get("eval_return")), show_number(row.get(plan.metric))]
                 for row in [*rows, *pending]]
        hidden = len(cells) - limit
        cells = cells[:limit]
        widths = [max(len(str(c)) for c in col) for col in zip(header, *cells)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [self.status(trials, results), fmt.format(*header),
                 *(fmt.format(*r).rstrip() for r in cells)]
        if hidden > 0:
            lines.append(f"... and {hidden} more")
        return lines

    def close(self) -> None:
        self._erase()
        trials = list(self.search.trials.values())
        if self.tty and trials:
            print("\n".join(self.table(trials, limit=10**6)), file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
