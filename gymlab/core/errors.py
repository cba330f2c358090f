"""Errors a user can cause (the CLI prints their message on one line and exits with code 2),
and failures outside gymlab's control that end a run on one line with exit code 1."""

from __future__ import annotations

from typing import Any


class UserError(ValueError):
    """A bad value, id, path or file supplied by the user."""


class UnsupportedSpaceError(UserError, TypeError):
    """An environment whose observation or action space an algorithm cannot handle."""


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated, corrupt or of another algorithm."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file that is truncated or damaged (as opposed to one of another kind)."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (disk full, permissions); the previous file of
    that name is kept and no temporary file is left behind."""


class EnvError(RuntimeError):
    """An environment that raised inside `reset` or `step`. The message is one line naming
    the environment id and the step; the environment's own exception is the __cause__."""

    def __init__(self, message: str, env_id: str = "", step: int | None = None) -> None:
        super().__init__(message)
        self.env_id = env_id
        self.step = step
        """Step of the episode that failed (1 is the first step); None: it failed in reset."""

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries from worker pools
        return (type(self), (str(self), self.env_id, self.step))
