"""`gymlab/NAS-v0`: an agent proposes a list of layer ids; the environment builds the CNN,
trains it, and answers with the recent architectures and their learning curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from gymlab.core.errors import UserError
from gymlab.nas.datasets import Dataset
from gymlab.nas.elites import Elites
from gymlab.nas.evaluator import Evaluator
from gymlab.nas.objective import Objective
from gymlab.nas.search_space import SearchSpace
from gymlab.nas.trainer import METRIC_CAP, METRICS, CandidateResult, TrainSettings

REWARDS = ("improvement", "accuracy")
MUTATION_TRIES = 20
"""mutate_repeats: draws of a one-layer change before a repeat is scored as it is."""


class NASEnv(gym.Env):
    """One step = one candidate network.

    Action: MultiDiscrete([len(space)] * layers), the layer ids in order (`none` ids make
    shallower networks). Observation: a Dict of `architectures` [memory, layers] (the newest
    last; empty slots hold len(space)) and `metrics` [memory, n_metrics, epochs] (their curves).
    A network that cannot be built leaves the memory unchanged. `info` has the architecture
    string, built flag, reason, params, FLOPs, best valid accuracy and training seconds;
    cache hits are in `last_cache_hit` and `stats`.

    Reward `improvement` (the tutorial's): +1 if built, -1 if not; when built, plus for each
    metric factor * (the previous network's minimum over epochs - this one's), plus
    depth_factor * (layers - effective depth). Reward `accuracy`: the best valid accuracy in
    [0, 1] (minus a running mean of past ones with `baseline=True`), or `failure_penalty`;
    under an `objective` other than plain accuracy, its fitness / 100 for a feasible network
    and `failure_penalty` for one over a cap. With `repeat_reward`, a network this env (or
    the envs it `share`s with) already scored since its last seeded reset gets that reward
    instead: repeating a network teaches a search nothing and spends its budget. With
    `mutate_repeats`, such a network is replaced by an unseen one that differs in one layer
    id (drawn at random), which is then scored: an agent that keeps choosing its best
    network explores around it, as evolution does. `info["layer_ids"]` is what was scored.

    With `edit_elites=k` the action edits a good network instead (gymlab.nas.elites):
    MultiDiscrete([k + 1, layers, len(space)]), the rank of one of the k best networks
    scored since the last seeded reset (k: a random network), a position and the id to put
    there; the observation adds `elites` [k, layers] and their `elite_scores` [k] (the
    accuracy reward's value, 0 for an empty row).

    Networks are scored by an `Evaluator`: the one given as `evaluator`, or one built from
    dataset, data_dir, subset, space, epochs, train, cache_file and `evaluator`="train" or
    "table" (with `table`). The evaluator's space and epochs are the env's.
    """

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(self, dataset: str | Dataset = "digits",
                 space: str | SearchSpace | list = "default", layers: int = 5,
                 memory: int = 10, epochs: int = 6,
                 metrics: Sequence[str] = ("train_loss", "valid_loss"),
                 reward: str = "improvement", reward_factors: Sequence[float] | None = None,
                 depth_factor: float = 0.0, failure_penalty: float = -1.0,
                 baseline: bool = False, data_dir: str | None = None, subset: int | None = None,
                 train: TrainSettings | dict | None = None, cache_file: str | None = None,
                 evaluator: str | Evaluator = "train", table: str | None = None,
                 objective: dict[str, Any] | None = None, repeat_reward: float | None = None,
                 mutate_repeats: bool = False, edit_elites: int = 0,
                 render_mode: str | None = None) -> None:
        if layers <= 0:
            raise UserError(f"layers must be positive, got {layers}")
        if memory <= 0:
            raise UserError(f"memory must be positive, got {memory}")
        if epochs <= 0:
            raise UserError(f"epochs must be positive, got {epochs}")
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise UserError(f"metrics must be some of {', '.join(METRICS)}, got {list(metrics)}")
        if reward not in REWARDS:
            raise UserError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        if edit_elites < 0:
            raise UserError(f"edit_elites must be 0 (propose layer ids) or positive, got "
                            f"{edit_elites}")
        if reward_factors is not None and len(reward_factors) != len(metrics):
            raise UserError("reward_factors needs one factor per metric")
        if not isinstance(evaluator, Evaluator):
            evaluator = Evaluator.from_settings(dataset, data_dir, subset, space, layers, epochs,
                                                train, evaluator, table, cache_file=cache_file)
        if evaluator.table is not None and layers != evaluator.table.layers:
            raise UserError(f"the table holds {evaluator.table.layers}-layer networks: "
                            f"use layers={evaluator.table.layers}, not {layers}")
        self.evaluator = evaluator
        """Scores the networks; the envs of one search share one (see `share`)."""
        self.layers, self.memory = layers, memory
        self.metrics = tuple(metrics)
        self.reward_kind = reward
        # losses should go down, accuracy up: an improvement is a drop in loss, a rise in acc
        self.reward_factors = tuple(reward_factors) if reward_factors is not None else tuple(
            -1.0 if m == "valid_acc" else 1.0 for m in self.metrics)
        self.depth_factor, self.failure_penalty, self.baseline = (depth_factor, failure_penalty,
                                                                  baseline)
        self.objective = objective_of(objective)
        """What the accuracy reward follows (the search's objective)."""
        self.repeat_reward, self.mutate_repeats = repeat_reward, mutate_repeats
        self._seen: set[tuple[str, ...]] = set()
        self.render_mode = render_mode
        n = len(self.space)
        self.elites = (Elites(edit_elites, layers, n, key=self.space.canonical)
                       if edit_elites else None)
        self.action_space = gym.spaces.MultiDiscrete(
            self.elites.nvec() if self.elites else [n] * layers)
        spaces: dict[str, gym.Space] = {
            "architectures": gym.spaces.Box(0, n, (memory, layers), np.float32),
            "metrics": gym.spaces.Box(0, METRIC_CAP, (memory, len(self.metrics), self.epochs),
                                      np.float32),
        }
        if self.elites:
            spaces["elites"] = gym.spaces.Box(0, n, (edit_elites, layers), np.float32)
            # an objective's fitness / 100 is at most 1, and far below 0 only with absurd weights
            spaces["elite_scores"] = gym.spaces.Box(-100.0, 1.0, (edit_elites,), np.float32)
        self.observation_space = gym.spaces.Dict(spaces)
        # Cache hits are counted here, not in `info`: gymnasium's checker demands the same
        # info for the same seed and actions, and a repeated step is a cache hit.
        self.stats = {"candidates": 0, "cache_hits": 0, "failures": 0, "train_seconds": 0.0}
        self.last_cache_hit = False
        self._reset_memory()
        self.last: CandidateResult | None = None

    @property
    def space(self) -> SearchSpace:
        return self.evaluator.space

    @property
    def epochs(self) -> int:
        return self.evaluator.epochs

    def share(self, evaluator: Evaluator, seen: set[tuple[str, ...]] | None = None,
              elites: Elites | None = None) -> None:
        """Score networks with `evaluator` from now on: the envs of one search share one, so
        none trains a network another already trained, and its callback sees every step.
        With `seen`, the envs also share which networks count as repeats (`repeat_reward`);
        with `elites` (edit actions), which networks are the best so far."""
        if evaluator.space != self.space or evaluator.epochs != self.epochs:
            raise ValueError("a shared evaluator must have the env's space and epochs")
        self.evaluator = evaluator
        if seen is not None:
            self._seen = seen
        if elites is not None and self.elites is not None:
            if elites.nvec() != self.elites.nvec():
                raise ValueError("shared elites must have the env's edit_elites")
            self.elites = elites

    def _reset_memory(self) -> None:
        self._architectures = np.full((self.memory, self.layers), len(self.space), np.float32)
        self._metrics = np.zeros((self.memory, len(self.metrics), self.epochs), np.float32)
        self._previous: CandidateResult | None = None
        self._accuracies: list[float] = []
        self._seen.clear()
        self._proposal: tuple[bytes, list[int]] | None = None
        if self.elites:
            self.elites.clear()

    def _obs(self) -> dict[str, np.ndarray]:
        obs = {"architectures": self._architectures.copy(), "metrics": self._metrics.copy()}
        if self.elites:
            obs["elites"], obs["elite_scores"] = self.elites.observation(len(self.space))
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_memory()
        return self._obs(), {}

    def step(self, action: Any):
        ids = self.propose(action)
        self._proposal = None
        # checked here, not in propose: another env of the round may have just scored it
        if self.mutate_repeats and self.space.canonical(ids) in self._seen:
            ids = self._unseen_neighbour(ids)
        result, hit = self.evaluator.evaluate(ids)
        self.last, self.last_cache_hit = result, hit
        self.stats["candidates"] += 1
        self.stats["cache_hits"] += hit
        self.stats["failures"] += not result.ok
        self.stats["train_seconds"] += 0.0 if hit else result.seconds
        key = self.space.canonical(ids)
        repeat = self.repeat_reward is not None and key in self._seen
        self._seen.add(key)
        if result.ok:
            reward = self.repeat_reward if repeat else self._reward(ids, result)
            self._architectures = np.roll(self._architectures, -1, axis=0)
            self._metrics = np.roll(self._metrics, -1, axis=0)
            self._architectures[-1] = ids
            self._metrics[-1] = [self._curve(result, m) for m in self.metrics]
            self._previous = result
            if self.elites and self.objective.feasible(result):
                self.elites.add(ids, self.objective.score(result) / 100.0)
        else:
            reward = self.failure_penalty
        info = {"architecture": result.architecture, "layer_ids": ids,
                "built": result.ok, "reason": result.reason,
                "params": result.params, "flops": result.flops,
                "best_valid_acc": result.best_valid_acc, "train_seconds": result.seconds}
        self.evaluator.answered(ids, result, hit, float(reward))
        if self.render_mode == "human":
            print(self.render_text())
        return self._obs(), float(reward), False, False, info

    def propose(self, action: Any) -> list[int]:
        """The layer ids `action` proposes (an edit decoded). A search calls it for a
        round's actions before stepping them, so their networks can train together; `step`
        then scores these ids (or, with `mutate_repeats`, an unseen neighbour of a repeat)."""
        raw = np.asarray(action).reshape(-1)
        if self._proposal is None or self._proposal[0] != raw.tobytes():
            ids = [int(i) for i in raw]
            if self.elites:
                ids = self.elites.decode(ids, self.np_random)
            self._proposal = (raw.tobytes(), ids)
        return self._proposal[1]

    def _unseen_neighbour(self, ids: list[int]) -> list[int]:
        """`ids` with one id changed at random, to a network not seen yet (`ids` itself
        after MUTATION_TRIES draws that were all seen)."""
        n = len(self.space)
        for _ in range(MUTATION_TRIES if n > 1 else 0):
            child = list(ids)
            position = int(self.np_random.integers(self.layers))
            child[position] = int((child[position] + self.np_random.integers(1, n)) % n)
            if self.space.canonical(child) not in self._seen:
                return child
        return ids

    def _curve(self, result: CandidateResult, metric: str) -> np.ndarray:
        curve = np.clip(np.asarray(getattr(result, metric), np.float32), 0.0, METRIC_CAP)
        # a network screened out by successive halving has a shorter curve: hold its last value
        return np.pad(curve, (0, self.epochs - len(curve)), mode="edge")

    def _reward(self, ids: Sequence[int], result: CandidateResult) -> float:
        if self.reward_kind == "accuracy":
            if not self.objective.feasible(result):
                return self.failure_penalty
            accuracy = self.objective.score(result) / 100.0
            base = float(np.mean(self._accuracies)) if self.baseline and self._accuracies else 0.0
            self._accuracies.append(accuracy)
            return accuracy - base
        reward = 1.0
        if self._previous is not None:
            for metric, factor in zip(self.metrics, self.reward_factors):
                before = self._curve(self._previous, metric).min()
                now = self._curve(result, metric).min()
                reward += factor * float(before - now)
        depth = len(self.space.canonical(ids))
        return reward + self.depth_factor * (self.layers - depth)

    def render_text(self) -> str:
        r = self.last
        if r is None:
            return "no network yet"
        if not r.ok:
            return f"{r.architecture}: not built ({r.reason})"
        curves = "\n".join(f"  {m:<10} " + " ".join(f"{v:7.3f}" for v in getattr(r, m))
                           for m in METRICS)
        return (f"{r.architecture}: {r.params} params, best valid acc "
                f"{r.best_valid_acc:.2f}%, {r.seconds:.2f}s\n{curves}")

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self.render_text()
        if self.render_mode == "human":
            print(self.render_text())
        return None



def objective_of(settings: dict[str, Any] | None) -> Objective:
    """An Objective from its JSON form (`Objective.to_json`; none: plain accuracy)."""
    if not settings:
        return Objective()
    known = {"objective": "kind", "params_weight": "params_weight",
             "flops_weight": "flops_weight", "max_params": "max_params",
             "max_flops": "max_flops"}
    unknown = sorted(set(settings) - set(known) - {"description"})
    if unknown:
        raise UserError(f"objective: unknown setting(s) {', '.join(unknown)}")
    return Objective(**{known[k]: v for k, v in settings.items() if k in known})
