"""MAML-TRPO's hyperparameters, the task families, and the published defaults per family.

MAMLConfig's defaults are those of pytorch-maml-rl's configs (configs/maml/*.yaml): fast
batch 20 episodes, one inner step of lr 0.1, 2 x 64 tanh, gamma 0.99, GAE tau 1.0, 500
batches, TRPO max_kl 0.01, 10 CG iterations, damping 1e-5, 15 line-search steps of 0.8.
FAMILY_DEFAULTS (MAML's tuned table) changes them per family: 2D navigation takes the MAML
authors' run (cbfinn/maml_rl maml_trpo_point.py: inner lr 0.5, 40 tasks, 2 x 100 ReLU,
actions divided by 10, 100 batches; the second test step each policy's own, chosen on 200
validation tasks, else 0.3 fast_lr: benchmarks/README.md); the MuJoCo families
pytorch-maml-rl's 40 tasks and actions scaled by 10 (their normalization_scale).
The task family, its keyword arguments and the seed are the run's (core.run.RunConfig).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym

from gymlab.agents.maml.policy import PolicyKind
from gymlab.core.config import require
from gymlab.core.envs import check_env_id, make_env
from gymlab.core.errors import UserError

FAMILIES: dict[str, str] = {
    "Navigation2D-v0": "gymlab/Navigation2D-v0",
    "HalfCheetahVel-v0": "gymlab/HalfCheetahVel-v0",
    "HalfCheetahDir-v0": "gymlab/HalfCheetahDir-v0",
    "AntVel-v0": "gymlab/AntVel-v0",
    "AntDir-v0": "gymlab/AntDir-v0",
    "AntPos-v0": "gymlab/AntPos-v0",
}
"""Short name -> gymnasium id of gymlab's task families (either spelling is accepted)."""

MUJOCO_FAMILIES = frozenset(name for name in FAMILIES if name != "Navigation2D-v0")

FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "Navigation2D-v0": {"fast_lr": 0.5, "meta_batch_size": 40, "hidden_size": 100,
                        "nonlinearity": "relu", "action_scale": 10.0, "num_batches": 100,
                        "later_step_fraction": 0.3, "later_step_tasks": 200},
    **{name: {"meta_batch_size": 40, "action_scale": 10.0} for name in MUJOCO_FAMILIES},
}
"""What differs from MAMLConfig's defaults per family (2D navigation: the MAML authors'
run; the MuJoCo families: pytorch-maml-rl's configs): the `MAML.TUNED` table, keyed by the
short id (the gymlab/ spelling finds it too)."""


@dataclass(frozen=True)
class MAMLConfig:
    """MAML with a TRPO meta-update (Finn et al., 2017), names as in pytorch-maml-rl."""

    max_episode_steps: int | None = None
    """Horizon of an episode (none: the family's: 100 for 2D navigation, 200 for the MuJoCo
    families as in the MAML paper; pytorch-maml-rl used 100)."""
    policy: PolicyKind = "auto"
    """gaussian (Box actions), categorical (Discrete actions), or auto: by the action space."""
    action_scale: float = 1.0
    """The environment gets the policy's action divided by this (then clipped to the action
    space): pytorch-maml-rl's normalization_scale, 10 for the MuJoCo families, so the
    initial std of 1 explores with 0.1 in the simulator's units."""
    hidden_size: int = 64
    """Units per hidden layer of the policy."""
    num_layers: int = 2
    """Hidden layers of the policy."""
    nonlinearity: Literal["tanh", "relu"] = "tanh"
    """Activation after each hidden layer."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 1.0
    """GAE's lambda (1.0: discounted returns minus the baseline)."""
    first_order: bool = False
    """First-order MAML: the meta-gradient treats the adapted parameters' inner-loop gradient
    as a constant (no second derivatives)."""
    fast_batch_size: int = 20
    """Episodes per task for each inner-loop step and for the post-update evaluation."""
    num_steps: int = 1
    """Inner-loop policy-gradient steps (each on fresh episodes of the adapted policy)."""
    fast_lr: float = 0.1
    """Inner-loop step size."""
    later_step_fraction: float = 0.5
    """Test time (`gymlab eval`, `meta eval`): the first step after the num_steps trained
    ones is this fraction of fast_lr, each further step half the one before."""
    later_step_tasks: int = 0
    """Test time: when positive, the fraction above is the policy's own instead, the one of
    0.1 to 1 whose step gives the best mean return on this many new validation tasks (40
    episodes each, drawn apart from the test's tasks), chosen when first needed."""
    num_batches: int = 500
    """Meta-updates (batches of tasks) to train for."""
    meta_batch_size: int = 20
    """Tasks per meta-update (pytorch-maml-rl: 20 for 2D navigation, 40 for MuJoCo)."""
    max_kl: float = 0.01
    """TRPO's trust region: mean KL of the adapted policies after the step."""
    cg_iters: int = 10
    """Conjugate-gradient iterations."""
    cg_damping: float = 1e-5
    """Damping added to the KL Hessian in the conjugate gradient."""
    ls_max_steps: int = 15
    """Backtracking line-search steps before the update is given up (the policy kept)."""
    ls_backtrack_ratio: float = 0.8
    """Each line-search step shrinks the step by this factor."""
    num_workers: int = 1
    """Processes stepping the MuJoCo families' environments (this one included; 2D
    navigation runs as one tensor program in this process), and threads sharing the
    meta-update's Hessian products (Gaussian policies). Results do not depend on it."""
    ray_address: str | None = None
    """Step the gymnasium families' environments in Ray actors instead of processes: local
    (start Ray here), auto, or HOST:PORT of a running cluster; num_workers actors (1: one per
    CPU of the cluster). 2D navigation runs as a tensor program here either way. Results do
    not depend on it."""
    device: str = "cpu"
    """torch device of the policy and the meta-update (cpu, cuda)."""
    output_folder: str | None = None
    """The run directory itself, made new, as pytorch-maml-rl's --output-folder (none: the
    usual <logdir>/maml-<env>-<time>); -$SLURM_JOB_ID is appended when that variable is set."""

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "fast_batch_size", "num_steps", "num_batches",
                     "meta_batch_size", "cg_iters", "ls_max_steps", "num_workers", "fast_lr",
                     "max_kl", "action_scale", "later_step_fraction"):
            value = getattr(self, name)
            require(value > 0, f"{name} must be positive, got {value}")
        require(self.later_step_tasks >= 0,
                f"later_step_tasks must be >= 0, got {self.later_step_tasks}")
        require(self.cg_damping >= 0, f"cg_damping must be >= 0, got {self.cg_damping}")
        require(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        require(0 <= self.tau <= 1, f"tau must be in [0, 1], got {self.tau}")
        require(0 < self.ls_backtrack_ratio < 1,
                f"ls_backtrack_ratio must be in (0, 1), got {self.ls_backtrack_ratio}")
        require(self.ray_address is None or self.ray_address.strip() != "",
                "ray_address must be local, auto or HOST:PORT, got an empty string")
        require(self.max_episode_steps is None or self.max_episode_steps > 0,
                f"max_episode_steps must be positive, got {self.max_episode_steps}")

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,) * self.num_layers


def resolve_env(name: str) -> str:
    """The gymnasium id of a task family; UserError for unknown ids, and for the MuJoCo
    families without the mujoco extra (how to install it)."""
    short = name.removeprefix("gymlab/")
    if short in MUJOCO_FAMILIES:
        from gymlab.envs import locomotion  # imports without mujoco, so it can say what is missing

        try:
            locomotion.require_mujoco()
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if short in FAMILIES:
        return FAMILIES[short]
    try:
        check_env_id(name)
    except UserError:
        raise UserError(f"unknown task family {name!r}; MAML's families are "
                        f"{', '.join(FAMILIES)}") from None
    return name


def family_env(env_id: str, kwargs: dict[str, Any]) -> gym.Env:
    env = make_env(env_id, kwargs=kwargs)
    if not all(hasattr(env.unwrapped, m) for m in ("sample_tasks", "reset_task")):
        env.close()
        raise UserError(f"{env_id} is not a task family (its environment has no sample_tasks"
                        f"(n, rng) and reset_task(task)); MAML's families are "
                        f"{', '.join(FAMILIES)}")
    return env
