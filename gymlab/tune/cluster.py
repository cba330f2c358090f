"""Re-exports of `gymlab.core.ray` for the modules that still import them from here; it goes
once they import gymlab.core.ray."""

from __future__ import annotations

from typing import Any

from gymlab.core.ray import RaySession, check_ray_address, check_reachable, require_ray_tune

__all__ = ["RaySession", "check_ray_address", "check_reachable", "import_ray"]


def import_ray(plan: Any) -> None:
    """Ray Tune is installed (and optuna for a plan that searches with it)."""
    require_ray_tune(optuna=plan.search == "optuna")
