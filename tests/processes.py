"""Killing a parent process and watching its workers: shared by the worker-pool tests."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def workers_left_after_kill(script: str, cwd: Path, workers: int) -> list[int]:
    """Run `script` (which prints its worker pids on one line, then waits), kill -9 it, and
    return the workers still alive 10 s later (killed then, so no test leaves them behind)."""
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=cwd,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == workers and all(alive(pid) for pid in pids)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left
