"""Time to solve CartPole-v1 with PPO: gymlab against Stable-Baselines3.

Protocol
--------
* gymlab: ``PPO("CartPole-v1", seed=s)`` with its tuned CartPole defaults (the class's TUNED table)
  and the full run machinery a user gets: a run directory in a temporary folder, TensorBoard
  events, progress.jsonl, best/last checkpoints at every evaluation.
* Stable-Baselines3: ``PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8, seed=s), seed=s)``
  with RL-Baselines3-Zoo's tuned CartPole-v1 hyperparameters (below); its linear learning-rate
  and clip-range schedules run over the step cap, as gymlab's annealing does.
* Both stop at the first evaluation whose mean return is >= 475 ("solved"), or at 200,000
  environment steps (all parallel environments counted). An evaluation is 10 deterministic
  episodes through the same `gymlab.core.evaluation.Evaluator`, seeded ``s + 1_000_000`` as a
  gymlab training session seeds it. SB3 acts through the mode of its policy's action
  distribution on the batched observations.
* Where the evaluations fall. Both evaluate once 2,000 more steps have passed, but each library
  can only look between its own steps:
  - gymlab evaluates only between rollouts (after each update), at the first rollout boundary
    at or past each multiple of 2,000 steps: with the tuned 16 * 64 = 1,024-step rollouts at
    2,048, 4,096, 6,144, 8,192, 10,240, ... steps. The step reported is the boundary's.
  - SB3's callback runs after every vectorised step (8 environment steps), so it evaluates at
    exactly 2,000, 4,000, ... steps, usually in the middle of a rollout, with the policy of the
    last update (zoo rollouts are 8 * 32 = 256 steps).
* One torch thread for both. Before the first timed run, one throwaway Adam optimizer is
  built: torch imports ``torch._dynamo`` (over a second) at the first optimizer a process
  makes, and that one-off cost would otherwise fall on whichever run comes first. Runs
  alternate per seed (gymlab s, SB3 s, gymlab s+1, ...), so a change in machine load hits
  both libraries alike.
* Per run: steps at the solving evaluation, wall seconds (``time.perf_counter``) and CPU
  seconds of this process (``time.process_time``) from agent construction to the stop,
  evaluations included. Unsolved runs count with the time they took to reach the cap.
* Printed: a per-seed table, the medians, and the ratios SB3 / gymlab of the median wall and
  CPU times, with the load average (``os.getloadavg``) at start and end. On a shared machine,
  compare only ratios measured within one invocation.

Run:  python benchmarks/cartpole_ppo.py [--seeds 5 | --seeds 5-9 | --seeds 0,3,7]
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from solve_protocol import RunResult, SolveCallback, main, timed
from stable_baselines3 import PPO as SB3PPO
from stable_baselines3.common.env_util import make_vec_env

from gymlab import PPO

ENV_ID = "CartPole-v1"
STOP_REWARD = 475.0
TOTAL_STEPS = 200_000
EVAL_EVERY = 2_000
EVAL_EPISODES = 10


@dataclass(frozen=True)
class Linear:
    """The zoo's ``lin_<x>`` schedule: x times SB3's progress_remaining (1 at the start, 0 at
    the end of the run)."""

    start: float

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.start


# RL-Baselines3-Zoo, hyperparams/ppo.yml, CartPole-v1 (n_envs 8 goes to make_vec_env)
SB3_ZOO_N_ENVS = 8
SB3_ZOO_CARTPOLE: dict[str, object] = {
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": Linear(1e-3),
    "clip_range": Linear(0.2),
}


def run_gymlab(seed: int) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="gymlab-bench-") as logdir:

        def train() -> int | None:
            agent = PPO(ENV_ID, seed=seed, logdir=logdir, progress=False,
                        eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES,
                        stop_reward=STOP_REWARD, total_steps=TOTAL_STEPS).learn()
            return agent.step if agent.outcome == "solved" else None

        return timed("gymlab", seed, train)


def run_sb3(seed: int) -> RunResult:
    def train() -> int | None:
        envs = make_vec_env(ENV_ID, n_envs=SB3_ZOO_N_ENVS, seed=seed)
        model = SB3PPO("MlpPolicy", envs, seed=seed, device="cpu", verbose=0,
                       **SB3_ZOO_CARTPOLE)  # type: ignore[arg-type]

        def mode(cb: SolveCallback, obs: np.ndarray) -> np.ndarray:
            return cb.model.policy.get_distribution(torch.from_numpy(obs)).mode().numpy()

        callback = SolveCallback(ENV_ID, seed, EVAL_EVERY, EVAL_EPISODES, STOP_REWARD, mode)
        model.learn(total_timesteps=TOTAL_STEPS, callback=callback)
        envs.close()
        return callback.solved_at

    return timed("sb3", seed, train)


RUNNERS: dict[str, Callable[[int], RunResult]] = {"gymlab": run_gymlab, "sb3": run_sb3}


if __name__ == "__main__":
    main(__doc__.split("\n\n")[0], RUNNERS)
