"""Scalars to TensorBoard and progress.jsonl, and a live progress display."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, TextIO

from gymlab.core.run import RunDir, atomic_write_text


def plural(unit: str) -> str:
    """`unit` counted more than once: steps, meta-batches, candidates."""
    return f"{unit}es" if unit.endswith(("ch", "sh", "s", "x")) else f"{unit}s"


class Progress:
    """A tqdm bar on a terminal; otherwise a plain line at every tenth of the run."""

    def __init__(self, total: int, start: int, desc: str, enabled: bool, stream: TextIO,
                 unit: str = "step") -> None:
        self.total, self.desc, self.stream, self.unit = total, desc, stream, unit
        self.enabled = enabled
        self.postfix: dict[str, str] = {}
        self.bar = None
        self.next_line = start + max(total // 10, 1)
        self.start_time, self.start_step = time.perf_counter(), start
        if enabled and stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, desc=desc, unit=unit, file=stream,
                            dynamic_ncols=True, smoothing=0.1, mininterval=0.25)

    def set(self, **values: Any) -> None:
        for key, value in values.items():
            self.postfix[key] = f"{value:.4g}" if isinstance(value, float) else str(value)

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            if self.bar.n == step and self.postfix:
                self.bar.set_postfix(self.postfix, refresh=False)
        elif self.enabled and step >= self.next_line:
            self.next_line = step + max(self.total // 10, 1)
            self.line(step)

    def write(self, line: str) -> None:
        """A line of the algorithm's own (a generation's summary) above the bar."""
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        elif self.enabled:
            print(line, file=self.stream, flush=True)

    def line(self, step: int) -> None:
        elapsed = time.perf_counter() - self.start_time
        rate = (step - self.start_step) / elapsed if elapsed > 0 else 0.0
        extra = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc} {step}/{self.total} {plural(self.unit)} ({rate:.3g} "
              f"{plural(self.unit)}/s) "
              f"{extra}".rstrip(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix(self.postfix, refresh=True)
            self.bar.close()


class Logger:
    """Writes each logged dict to progress.jsonl (one JSON object per call) and TensorBoard.

    Resuming at step k drops whatever was logged after k, in both, so the curves continue
    where the checkpoint was taken instead of doubling back.
    """

    def __init__(self, run: RunDir | None, resume_step: int | None = None) -> None:
        self.file: TextIO | None = None
        self.writer = None
        if run is None:
            return
        path = run.path / "progress.jsonl"
        if resume_step is not None:
            _truncate_after(path, resume_step)
        self.file = open(path, "a")
        from gymlab.core.tfevents import EventWriter

        purge = resume_step + 1 if resume_step is not None else None
        self.writer = EventWriter(run.path, purge_step=purge)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        if self.file is None:
            return
        clean = {k: (float(v) if math.isfinite(v) else str(v)) for k, v in scalars.items()}
        self.file.write(json.dumps({"step": step, **clean}) + "\n")
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)  # type: ignore[union-attr]

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()
            self.writer.flush()  # type: ignore[union-attr]

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.writer.close()  # type: ignore[union-attr]
            self.file = None


def _truncate_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if _step_of(line) <= step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _step_of(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf  # a half-written last line from a crash


def read_progress(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run's progress.jsonl (a half-written last line is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
