"""Ray itself, for every layer that runs work on it (tune's trials, evolution's fitness, NAS's
candidates): checking it is installed, quietening it, and starting a local instance or joining
a cluster (failing fast on an unreachable address). Ray is only ever imported inside these
functions, so that `gymlab train` and `--help` never import it."""

from __future__ import annotations

import os
import sys
from typing import Any

from gymlab.core.errors import UserError

RAY_TEMP_DIR = "/tmp/ray"
"""Ray's session folder for a local instance (its sockets need a short path), unless
RAY_TMPDIR is set."""
INSTALL_HINT = "pip install -c constraints.txt -e '.[tune]' (Ray Tune >= 2.41, optuna)"


def require_ray_tune(optuna: bool = False) -> None:
    """Ray Tune (>= 2.41) is installed, and optuna with `optuna`; else a UserError that says
    how to install them."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserError(f"gymlab tune needs Ray Tune: {INSTALL_HINT}") from None
    if not all(hasattr(tune, name) for name in ("report", "get_context", "RunConfig")):
        raise UserError(f"gymlab tune needs Ray >= 2.41, found {ray.__version__}: "
                        f"{INSTALL_HINT}")
    if optuna:
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise UserError(f"--search optuna needs optuna: {INSTALL_HINT}") from None


def _quiet_ray_environment() -> None:
    """Before ray is imported: no usage reporting, no log files' spam, our SIGINT handling."""
    for key, value in {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_DEDUP_LOGS": "0",
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
        "TUNE_DISABLE_SIGINT_HANDLER": "1",
        "RAY_AIR_NEW_OUTPUT": "0",
        "RAY_CHDIR_TO_TRIAL_DIR": "0",
        "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S": "1000000",
        "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
        "PYTHONWARNINGS": "ignore",
    }.items():
        os.environ.setdefault(key, value)


class RaySession:
    """Connects to `address`, or starts a local instance with every CPU; shuts down what it
    started. An unreachable address is a UserError after a short timeout."""

    def __init__(self, address: str | None, cpus_per_trial: int) -> None:
        self.address, self.cpus_per_trial = address, cpus_per_trial
        self.started = False

    def __enter__(self) -> int:
        import logging
        import warnings

        _quiet_ray_environment()
        warnings.filterwarnings("ignore", module="ray")
        import ray

        # failed trials are reported by the display and in error.txt, not by Ray's tracebacks
        self.logger = logging.getLogger("ray")
        self.log_level = self.logger.level
        self.logger.setLevel(logging.CRITICAL)
        if ray.is_initialized():  # the caller's own Ray: use it, leave it running
            return self._cpus(ray)
        quiet = {"log_to_driver": False, "configure_logging": False,
                 "logging_level": logging.ERROR}
        if self.address is None:
            cpus = os.cpu_count() or 1
            if self.cpus_per_trial > cpus:
                raise UserError(f"--cpus-per-trial {self.cpus_per_trial}: this machine has "
                                f"{cpus} CPUs")
            temp = {} if os.environ.get("RAY_TMPDIR") else {"_temp_dir": RAY_TEMP_DIR}
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **temp, **quiet)
        else:
            # Ray retries a rejected connection once a second for 20 s (read at call time;
            # RAY_NUM_REDIS_GET_RETRIES sets it), its C++ core logging every try to fd 2
            from ray._private import ray_constants

            retries = getattr(ray_constants, "NUM_REDIS_GET_RETRIES", None)
            if retries is not None and "RAY_NUM_REDIS_GET_RETRIES" not in os.environ:
                ray_constants.NUM_REDIS_GET_RETRIES = 5
            with _captured_stderr() as captured:
                try:
                    ray.init(address=self.address, **quiet)
                    error = None
                except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
                    error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                finally:
                    if retries is not None:
                        ray_constants.NUM_REDIS_GET_RETRIES = retries
            if error is not None:
                if "InvalidAuthToken" in captured.text and not os.environ.get("RAY_AUTH_MODE"):
                    error += " (the cluster uses token authentication: set RAY_AUTH_MODE=token)"
                elif "InvalidAuthToken" in captured.text:
                    error += " (the cluster rejected the authentication token)"
                raise UserError(f"cannot connect to the Ray cluster at {self.address}: "
                                f"{error}")
        self.started = True
        try:
            return self._cpus(ray)
        except BaseException:
            self.__exit__()
            raise

    def _cpus(self, ray: Any) -> int:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if self.cpus_per_trial > cpus:
            raise UserError(f"--cpus-per-trial {self.cpus_per_trial}: the Ray cluster has "
                            f"{cpus} CPUs")
        return cpus

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            import ray

            ray.shutdown()
            self.started = False
        self.logger.setLevel(self.log_level)


class _captured_stderr:  # noqa: N801  (a context manager used like a function)
    """Send file descriptor 2 (where Ray's C++ core logs) to a file for a while; `.text`."""

    def __enter__(self) -> _captured_stderr:
        import tempfile

        sys.stderr.flush()
        self.file = tempfile.TemporaryFile(mode="w+")
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        self.text = ""
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read()
        self.file.close()


def check_ray_address(address: str | None) -> None:
    """Before anything is written: Ray is installed and the cluster at `address` answers
    (none: nothing to check; local: Ray starts later, here)."""
    if address is None:
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError(f"--ray-address needs Ray: {INSTALL_HINT}") from None
    check_reachable(address)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A TCP connection to host:port (ray://host:port), so a wrong address fails at once."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise UserError(f"--ray-address: expected HOST:PORT (or ray://HOST:PORT, auto), "
                        f"got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(f"cannot reach a Ray cluster at {address}: {reason}") from None
