"""Errors a user can cause. The CLI prints their message on one line and exits with code 2."""

from __future__ import annotations


class UserError(ValueError):
    """A bad value, id, path or file supplied by the user."""


class UnsupportedSpaceError(UserError, TypeError):
    """An environment whose observation or action space an algorithm cannot handle."""


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated, corrupt or of another algorithm."""


class EnvError(RuntimeError):
    """An environment that raised inside reset or step: the run stops with one line naming
    the environment and the step, and keeps its last checkpoint."""
