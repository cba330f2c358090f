"""Time to solve CartPole-v1 with DQN: gymlab against Stable-Baselines3.

Protocol
--------
* gymlab: ``DQN("CartPole-v1", seed=s)`` with its tuned CartPole defaults (the class's TUNED table)
  and the full run machinery a user gets: a run directory in a temporary folder, TensorBoard
  events, progress.jsonl, best/last checkpoints at every evaluation.
* Stable-Baselines3: ``DQN("MlpPolicy", "CartPole-v1", seed=s)`` with RL-Baselines3-Zoo's tuned
  CartPole-v1 hyperparameters (below), its exploration schedule stretched over the step cap.
* Both stop at the first evaluation whose mean return is >= 475 ("solved"), or at 100,000
  environment steps. An evaluation runs every 1,000 steps: 10 deterministic (greedy)
  episodes through the same `gymlab.core.evaluation.Evaluator`, seeded ``s + 1_000_000`` as a
  gymlab training session seeds it. SB3 acts through the argmax of its ``q_net`` on the
  batched observations.
* One torch thread for both. Runs alternate per seed (gymlab s, SB3 s, gymlab s+1, ...), so a
  change in machine load hits both libraries alike.
* Per run: steps at the solving evaluation, wall seconds (``time.perf_counter``) and CPU
  seconds of this process (``time.process_time``) from agent construction to the stop.
  Unsolved runs count with the time they took to reach the cap.
* Printed: a per-seed table, the medians, and the ratios SB3 / gymlab of the median wall and
  CPU times, with the load average (``os.getloadavg``) at start and end. On a shared machine,
  compare only ratios measured within one invocation.

Run:  python benchmarks/cartpole_dqn.py [--seeds 5 | --seeds 5-9 | --seeds 0,3,7]
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import numpy as np
import torch
from solve_protocol import RunResult, SolveCallback, main, timed
from stable_baselines3 import DQN as SB3DQN

from gymlab import DQN

ENV_ID = "CartPole-v1"
STOP_REWARD = 475.0
TOTAL_STEPS = 100_000
EVAL_EVERY = 1_000
EVAL_EPISODES = 10

# RL-Baselines3-Zoo, hyperparams/dqn.yml, CartPole-v1
SB3_ZOO_CARTPOLE: dict[str, object] = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1_000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}


def run_gymlab(seed: int) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="gymlab-bench-") as logdir:

        def train() -> int | None:
            agent = DQN(ENV_ID, seed=seed, logdir=logdir, progress=False,
                        eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES,
                        stop_reward=STOP_REWARD, total_steps=TOTAL_STEPS).learn()
            return agent.step if agent.outcome == "solved" else None

        return timed("gymlab", seed, train)


def run_sb3(seed: int) -> RunResult:
    def train() -> int | None:
        model = SB3DQN("MlpPolicy", ENV_ID, seed=seed, device="cpu", verbose=0,
                       **SB3_ZOO_CARTPOLE)  # type: ignore[arg-type]

        def greedy(cb: SolveCallback, obs: np.ndarray) -> np.ndarray:
            return cb.model.q_net(torch.from_numpy(obs)).argmax(1).numpy()

        callback = SolveCallback(ENV_ID, seed, EVAL_EVERY, EVAL_EPISODES, STOP_REWARD, greedy)
        model.learn(total_timesteps=TOTAL_STEPS, callback=callback)
        return callback.solved_at

    return timed("sb3", seed, train)


RUNNERS: dict[str, Callable[[int], RunResult]] = {"gymlab": run_gymlab, "sb3": run_sb3}


if __name__ == "__main__":
    main(__doc__.split("\n\n")[0], RUNNERS)
