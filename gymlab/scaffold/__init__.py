"""`gymlab new-env`: write a pip-installable package of gymnasium environments to start from.

    from gymlab.scaffold import new_env

    new_env("my_envs", stages=["Easy", "Hard"], obs="dict", action="multidiscrete")

Only the standard library is imported here, so the CLI's parser can read the choices.
"""

from gymlab.scaffold.generator import (
    DEFAULT_STAGES,
    check_package_name,
    make_stages,
    new_env,
    render_package,
)
from gymlab.scaffold.variants import ACTIONS, OBSERVATIONS

__all__ = ["ACTIONS", "DEFAULT_STAGES", "OBSERVATIONS", "check_package_name", "make_stages",
           "new_env", "render_package"]
