"""Worker processes that end with their parent.

A parent killed with SIGKILL (or by the kernel's out-of-memory killer) runs no clean-up, so
its workers would wait for work forever, each holding its memory. A worker started through
this module ends within about a second of its parent: on Linux the kernel sends it SIGKILL
(the parent-death signal), and on every platform a daemon thread watches the parent's pid.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def exit_with_parent(parent_pid: int, death_signal: bool = True,
                     poll_seconds: float = 0.5) -> None:
    """Make this process end when the process `parent_pid` ends, however it ends. Call it
    first thing in a worker, with the pid of the process that started it (`os.getpid()` there,
    passed along: spawn and fork contexts, not forkserver, whose server is the parent).

    `death_signal`: also ask Linux for SIGKILL when the parent's *thread* that started this
    process ends, so pass False when a thread other than the parent's main thread starts
    workers that must outlive it.
    """
    if death_signal and sys.platform.startswith("linux"):
        _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before this process could ask
        os._exit(1)
    watcher = threading.Thread(target=_watch_parent, args=(parent_pid, poll_seconds),
                               name="gymlab-parent-watch", daemon=True)
    watcher.start()


def _set_parent_death_signal(signum: int) -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watcher thread still ends this process


def _watch_parent(parent_pid: int, poll_seconds: float) -> None:
    # an orphan is adopted by init or a subreaper: its parent pid changes
    while os.getppid() == parent_pid:
        time.sleep(poll_seconds)
    os._exit(1)


def _init_worker(parent_pid: int, death_signal: bool,
                 initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    exit_with_parent(parent_pid, death_signal)
    if initializer is not None:
        initializer(*initargs)


def worker_pool(workers: int, initializer: Callable[..., Any] | None = None,
                initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor of `workers` spawned processes that ignore Ctrl-C (the parent
    handles it) and end with this process; `initializer(*initargs)` runs in each first.

    spawn, not fork: a forked child would copy running threads' locks (TensorBoard's writer,
    torch's pools) in whatever state they were in.
    """
    main = threading.current_thread() is threading.main_thread()
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
        initargs=(os.getpid(), main, initializer, initargs))
