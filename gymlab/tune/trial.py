"""One trial: a normal gymlab run in a Ray worker process, reporting every metric to Ray
Tune after each evaluation and at its end."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrialSetup:
    algo: str
    env: str
    fixed: dict[str, Any]
    path: str
    threads: int


def run_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    import traceback

    from ray import tune

    from gymlab.registry import algorithm

    trial_dir = Path(setup.path) / tune.get_context().get_trial_name()
    overrides = {**setup.fixed, **config, "logdir": str(trial_dir), "progress": False,
                 "torch_threads": setup.threads}
    try:
        agent = algorithm(setup.algo)(setup.env, **overrides)
        # an algorithm that scores itself counts its steps in its own unit, up to its budget
        max_steps = (agent.progress_total() if type(agent).scores_itself
                     else agent.run_config.total_steps)
        stop_reward = agent.run_config.stop_reward
        state: dict[str, Any] = {"best": -math.inf, "last": math.nan, "solved": None}
        start = time.perf_counter()

        def metrics(step: int, outcome: str) -> dict[str, Any]:
            wall = time.perf_counter() - start
            solved = state["solved"]
            return {
                "step": step,
                "steps": step,
                "outcome": outcome,
                "solved": solved is not None,
                "steps_to_solve": solved[0] if solved else max_steps,
                "wall_to_solve": solved[1] if solved else wall * max_steps / max(step, 1),
                "eval_return": state["best"] if state["best"] > -math.inf else math.nan,
                "last_eval_return": state["last"],
                "wall_s": wall,
                "run_dir": str(agent.run.path) if agent.run else "",
                type(agent).score_name: state["best"] if state["best"] > -math.inf else math.nan,
            }

        def on_eval(step: int, result: Any) -> bool:
            state["best"] = max(state["best"], result.mean)
            state["last"] = result.mean
            if state["solved"] is None and stop_reward is not None and result.mean >= stop_reward:
                state["solved"] = (step, time.perf_counter() - start)
            tune.report(metrics(step, "running"))
            return False

        agent.learn(on_eval=on_eval)
    except Exception:
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "error.txt").write_text(traceback.format_exc())
        raise
    tune.report(metrics(agent.step, agent.outcome))


def trial_dir_name(index: int, total: int) -> str:
    return f"trial-{index:0{max(3, len(str(total - 1)))}d}"
