"""`gymlab/NAS-v0`: an agent proposes a list of layer ids; the environment builds the CNN,
trains it, and answers with the recent architectures and their learning curves."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from gymlab.core.errors import UserError
from gymlab.envs.nas.datasets import Dataset, load_dataset
from gymlab.envs.nas.search_space import SearchSpace, load_space
from gymlab.envs.nas.trainer import METRIC_CAP, CandidateResult, TrainSettings, train_candidate
from gymlab.envs.nas.workers import CandidatePool

METRICS = ("train_loss", "valid_loss", "valid_acc")
REWARDS = ("improvement", "accuracy")


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
    [0, 1] (minus a running mean of past ones with `baseline=True`), or `failure_penalty`.
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
                 evaluator: str = "train", table: str | None = None,
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
        if reward_factors is not None and len(reward_factors) != len(metrics):
            raise UserError("reward_factors needs one factor per metric")
        if evaluator not in ("train", "table"):
            raise UserError(f"evaluator must be train or table, got {evaluator!r}")
        self.table = None
        if evaluator == "table":
            from gymlab.envs.nas.table import ArchitectureTable

            self.table = ArchitectureTable(table or "digits-default-3")
            if layers != self.table.layers:
                raise UserError(f"the table holds {self.table.layers}-layer networks: "
                                f"use layers={self.table.layers}, not {layers}")
            space, epochs = self.table.space, self.table.meta["settings"]["epochs"]
        self.space = space if isinstance(space, SearchSpace) else load_space(space)
        self.data = None if self.table is not None else (
            dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_dir, subset))
        self.layers, self.memory, self.epochs = layers, memory, epochs
        self.metrics = tuple(metrics)
        self.reward_kind = reward
        # losses should go down, accuracy up: an improvement is a drop in loss, a rise in acc
        self.reward_factors = tuple(reward_factors) if reward_factors is not None else tuple(
            -1.0 if m == "valid_acc" else 1.0 for m in self.metrics)
        self.depth_factor, self.failure_penalty, self.baseline = (depth_factor, failure_penalty,
                                                                  baseline)
        if isinstance(train, dict):  # from JSON (a run's env_kwargs)
            try:
                train = TrainSettings(**train)
            except TypeError as exc:
                raise UserError(f"train settings: {exc}") from None
        self.settings = train or TrainSettings(epochs=epochs)
        if self.settings.epochs != epochs:
            self.settings = TrainSettings(**{**self.settings.__dict__, "epochs": epochs})
        self.render_mode = render_mode
        n = len(self.space)
        self.action_space = gym.spaces.MultiDiscrete([n] * layers)
        self.observation_space = gym.spaces.Dict({
            "architectures": gym.spaces.Box(0, n, (memory, layers), np.float32),
            "metrics": gym.spaces.Box(0, METRIC_CAP, (memory, len(self.metrics), epochs),
                                      np.float32),
        })
        self.cache: dict[tuple[str, ...], CandidateResult] = {}
        self._prefetched: set[tuple[str, ...]] = set()
        self._screened: dict[tuple[str, ...], tuple[CandidateResult, bool]] = {}
        self.cache_file = Path(cache_file) if cache_file else None
        if self.cache_file is not None and self.cache_file.exists():
            self.cache.update(_read_cache(self.cache_file))
        # Cache hits are counted here, not in `info`: gymnasium's checker demands the same
        # info for the same seed and actions, and a repeated step is a cache hit.
        self.stats = {"candidates": 0, "cache_hits": 0, "failures": 0, "train_seconds": 0.0}
        self.last_cache_hit = False
        self.on_candidate: Callable[[list[int], CandidateResult, bool, float], None] | None = None
        """Called after every step with (ids, result, cache hit, reward): how a search
        driving this env from outside (an RL agent's loop) reports progress."""
        self._reset_memory()
        self.last: CandidateResult | None = None

    def _reset_memory(self) -> None:
        self._architectures = np.full((self.memory, self.layers), len(self.space), np.float32)
        self._metrics = np.zeros((self.memory, len(self.metrics), self.epochs), np.float32)
        self._previous: CandidateResult | None = None
        self._accuracies: list[float] = []

    def _obs(self) -> dict[str, np.ndarray]:
        return {"architectures": self._architectures.copy(), "metrics": self._metrics.copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_memory()
        return self._obs(), {}

    def evaluate(self, ids: Sequence[int]) -> tuple[CandidateResult, bool]:
        """Train the network of `ids`, or take it from the cache: (result, cache hit)."""
        key = self.space.canonical(ids)
        if key in self._screened:  # stopped early by successive halving in this round
            result, hit = self._screened[key]
            self._screened[key] = (result, True)  # the same network again is a cache hit
            return result, hit
        if key in self._prefetched:  # trained in parallel just before this step
            self._prefetched.discard(key)
            return self.cache[key], False
        if key in self.cache:
            return self.cache[key], True
        self._store(key, self._train(ids, self.settings))
        return self.cache[key], False

    def _train(self, ids: Sequence[int], settings: TrainSettings) -> CandidateResult:
        if self.table is None:
            return train_candidate(ids, self.space, self.data, settings)
        full = self.table.lookup(list(ids), settings.seed)
        # training is seeded and has no schedule, so a shorter training is the same
        # training stopped early: its curves are the first epochs of the full ones
        return dataclasses.replace(full, **{m: getattr(full, m)[:settings.epochs]
                                            for m in METRICS})

    def train_batch(self, batch: Sequence[Sequence[int]], pool: CandidatePool,
                    epochs: int | None = None) -> list[tuple[CandidateResult, bool]]:
        """(result, cache hit) for every network of `batch`, trained for `epochs` (default:
        the env's) on `pool`'s workers where not cached. Shorter trainings are cached apart
        from full ones. Training is seeded per candidate, so the results are those of
        training them one by one here."""
        epochs = epochs or self.settings.epochs
        settings = dataclasses.replace(self.settings, epochs=epochs)

        def key_of(ids: Sequence[int]) -> tuple[str, ...]:
            key = self.space.canonical(ids)
            return key if epochs == self.settings.epochs else (*key, f"epochs={epochs}")

        todo: dict[tuple[str, ...], list[int]] = {}
        for ids in batch:
            key = key_of(ids)
            if key not in self.cache and key not in todo:
                todo[key] = [int(i) for i in ids]
        trained = (pool.map(list(todo.values()), settings) if self.table is None
                   else [self._train(ids, settings) for ids in todo.values()])
        for key, result in zip(todo, trained):
            self._store(key, result)
        return [(self.cache[key_of(ids)], key_of(ids) not in todo) for ids in batch]

    def prefetch(self, batch: Sequence[Sequence[int]], pool: CandidatePool) -> None:
        """Train the networks of `batch` that are not cached yet on `pool`'s workers, so the
        steps that follow find them (and count them as trained, not as cache hits)."""
        for ids, (_, hit) in zip(batch, self.train_batch(batch, pool)):
            if not hit:
                self._prefetched.add(self.space.canonical(ids))

    def share_cache(self, other: NASEnv) -> None:
        """Use `other`'s cache: the envs of one search never train a network twice, and
        `other.prefetch` trains for all of them."""
        self.cache, self._prefetched = other.cache, other._prefetched

    def screen(self, screened: dict[tuple[int, ...], tuple[CandidateResult, bool]]) -> None:
        """Until the next call, steps on these networks answer these shorter trainings
        (successive halving stopped them there): ids -> (result, cache hit)."""
        self._screened = {self.space.canonical(ids): answer for ids, answer in screened.items()}

    def _store(self, key: tuple[str, ...], result: CandidateResult) -> None:
        self.cache[key] = result
        if self.cache_file is not None and self.table is None:  # so a resumed search does
            # not train this one again (a table lookup costs nothing)
            with open(self.cache_file, "a") as f:
                f.write(json.dumps({"key": list(key), **_result_fields(result)}) + "\n")

    def step(self, action: Any):
        ids = [int(i) for i in np.asarray(action).reshape(-1)]
        result, hit = self.evaluate(ids)
        self.last, self.last_cache_hit = result, hit
        self.stats["candidates"] += 1
        self.stats["cache_hits"] += hit
        self.stats["failures"] += not result.ok
        self.stats["train_seconds"] += 0.0 if hit else result.seconds
        if result.ok:
            reward = self._reward(ids, result)
            self._architectures = np.roll(self._architectures, -1, axis=0)
            self._metrics = np.roll(self._metrics, -1, axis=0)
            self._architectures[-1] = ids
            self._metrics[-1] = [self._curve(result, m) for m in self.metrics]
            self._previous = result
        else:
            reward = self.failure_penalty
        info = {"architecture": result.architecture, "built": result.ok, "reason": result.reason,
                "params": result.params, "flops": result.flops,
                "best_valid_acc": result.best_valid_acc, "train_seconds": result.seconds}
        if self.on_candidate is not None:
            self.on_candidate(ids, result, hit, float(reward))
        if self.render_mode == "human":
            print(self.render_text())
        return self._obs(), float(reward), False, False, info

    def _curve(self, result: CandidateResult, metric: str) -> np.ndarray:
        curve = np.clip(np.asarray(getattr(result, metric), np.float32), 0.0, METRIC_CAP)
        # a network screened out by successive halving has a shorter curve: hold its last value
        return np.pad(curve, (0, self.epochs - len(curve)), mode="edge")

    def _reward(self, ids: Sequence[int], result: CandidateResult) -> float:
        if self.reward_kind == "accuracy":
            accuracy = result.best_valid_acc / 100.0
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


def _result_fields(result: CandidateResult) -> dict[str, Any]:
    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
            if f.name != "model"}


def _read_cache(path: Path) -> dict[tuple[str, ...], CandidateResult]:
    """Entries of a cache file; a half-written last line (a crash) is skipped."""
    cache = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            key = tuple(entry.pop("key"))
            cache[key] = CandidateResult(**entry)
        except (json.JSONDecodeError, TypeError, KeyError):
            continue
    return cache
