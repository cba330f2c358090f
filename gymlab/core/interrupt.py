"""Ctrl-C and SIGTERM: the first one asks the run to stop after saving, a second one ends
the process at once and quietly."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from gymlab.core.checkpoints import remove_partial_checkpoints


def _interactive() -> bool:
    """A Python prompt or a Jupyter kernel, where ending the process would lose the session."""
    return hasattr(sys, "ps1") or bool(sys.flags.interactive) or "ipykernel" in sys.modules


class GracefulInterrupt:
    """Turns the first SIGINT/SIGTERM into a flag the training loop checks between steps
    (and a call of `on_signal`, for loops that must be told).

    A second signal means "stop now": it raises SystemExit(128 + the signal), which unwinds
    through `finally` blocks and ends the process without a traceback, the last finished
    checkpoint kept (checkpoints are replaced atomically). Any further signal, during that
    unwinding or later while the interrupted process shuts down, ends it at once and silently
    (a traceback from an exit handler would bury the message saying how to resume). At an
    interactive prompt the second signal raises KeyboardInterrupt instead, and the previous
    handlers come back when the context ends.
    """

    def __init__(self, on_signal: Callable[[int], None] | None = None) -> None:
        self.signal: int | None = None
        self.on_signal = on_signal
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal or 0)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            if _interactive():
                raise KeyboardInterrupt
            for sig in self._previous:
                signal.signal(sig, _exit_now)
            raise SystemExit(128 + signum)
        self.signal = signum
        if self.on_signal is not None:
            self.on_signal(signum)

    def __enter__(self) -> GracefulInterrupt:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        quiet = self.requested and not _interactive()
        for sig, handler in self._previous.items():
            signal.signal(sig, _exit_now if quiet else handler)
        self._previous.clear()


def _exit_now(signum: int, frame: Any) -> None:
    """End the process at once with 128 + signum, without tracebacks or exit handlers."""
    remove_partial_checkpoints()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(128 + signum)
