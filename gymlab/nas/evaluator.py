"""Scoring candidate networks for a search: the cache of results (and its jsonl file), training
on worker processes or Ray actors, lookups in an architecture table, and successive-halving
screening of a round. The environments and the search driver share one `Evaluator`, so no
network is trained twice in a search."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gymlab.core.errors import UserError
from gymlab.nas.datasets import Dataset, load_dataset
from gymlab.nas.halving import successive_halving
from gymlab.nas.search_space import SearchSpace, load_space
from gymlab.nas.table import ArchitectureTable
from gymlab.nas.trainer import METRICS, CandidateResult, TrainSettings, train_candidate
from gymlab.nas.workers import CandidatePool, usable_workers

EVALUATORS = ("train", "table")
DEVICES = ("auto", "cpu", "cuda")
TABLE_REPLACES = ("digits", "digits-shifted")
"""Data set names that are some default (the environment's, gymlab nas's): a table's own
data set replaces them."""
DEFAULT_EPOCHS = TrainSettings.epochs
"""Recorded epochs of a candidate's training unless asked otherwise."""

Key = tuple[str, ...]
ResultCallback = Callable[[list[int], CandidateResult, bool, float], None]


class Evaluator:
    """Answers "how good is the network of these layer ids?" with a `CandidateResult`.

    `evaluate(ids)` trains the network (or looks it up in `table`) unless the cache holds it.
    With `cache_file`, every trained result is appended to it and the results already there
    are loaded, so a resumed search trains nothing twice. With `workers` > 1 (or a
    `ray_address`), `prepare_round(batch)` trains a round's networks in parallel before they
    are stepped; with `halving_epochs`, it screens them by successive halving first. Every
    training is seeded by the candidate, so results never depend on where it ran.
    """

    def __init__(self, space: SearchSpace, data: Dataset | None, settings: TrainSettings,
                 table: ArchitectureTable | None = None, cache_file: str | Path | None = None,
                 workers: int = 1, ray_address: str | None = None, halving_epochs: int = 0,
                 halving_eta: int = 3, device: str = "cpu") -> None:
        if table is None and data is None:
            raise UserError("an evaluator that trains needs a dataset")
        self.device = resolve_device(device)
        """Where candidates train: cpu or cuda (each worker process or Ray actor on a GPU)."""
        self.host_data = data
        """The data in host memory, what workers and Ray actors receive."""
        # moved once: candidates trained here then index device tensors, never copy batches
        self.data = data.on(self.device) if data is not None else None
        self.space, self.settings, self.table = space, settings, table
        self.workers, self.ray_address = workers, ray_address
        self.halving_epochs, self.halving_eta = halving_epochs, halving_eta
        self.cache: dict[Key, CandidateResult] = {}
        self.cache_file: Path | None = None
        self._prefetched: set[Key] = set()
        self._screened: dict[Key, tuple[CandidateResult, bool]] = {}
        self._pool: CandidatePool | None = None
        self.on_result: ResultCallback | None = None
        """Called for every stepped candidate with (ids, result, cache hit, reward): how a
        search that an RL agent's loop drives sees its progress."""
        if cache_file is not None:
            self.keep_results_in(cache_file)

    @classmethod
    def from_settings(cls, dataset: str | Dataset = "digits", data_dir: str | None = None,
                      subset: int | None = None, space: str | SearchSpace | list = "default",
                      layers: int = 5, epochs: int = DEFAULT_EPOCHS,
                      train: TrainSettings | dict | None = None,
                      evaluator: str = "train", table: str | None = None,
                      **options: Any) -> Evaluator:
        """An evaluator from the environment's keyword arguments (gym.make's): it loads the
        data and space, or the table (whose space, layers and epochs then apply)."""
        if evaluator not in EVALUATORS:
            raise UserError(f"evaluator must be train or table, got {evaluator!r}")
        lookup = None
        if evaluator == "table":
            lookup = ArchitectureTable(table or "digits-default-3")
            check_table(lookup, dataset, space, layers, epochs)
            space, epochs = lookup.space, lookup.meta["settings"]["epochs"]
        space = space if isinstance(space, SearchSpace) else load_space(space)
        data = None if lookup is not None else (
            dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_dir, subset))
        if isinstance(train, dict):  # from JSON (a run's env_kwargs)
            try:
                train = TrainSettings(**train)
            except TypeError as exc:
                raise UserError(f"train settings: {exc}") from None
        settings = dataclasses.replace(train or TrainSettings(), epochs=epochs)
        return cls(space, data, settings, lookup, **options)

    @property
    def dataset_name(self) -> str:
        """The data set candidates are scored on: the table's, or the loaded one's."""
        if self.table is not None:
            return str(self.table.meta.get("dataset", "table"))
        return self.data.name  # type: ignore[union-attr]

    @property
    def epochs(self) -> int:
        """Recorded epochs of a full training (the length of a full result's curves)."""
        return self.settings.epochs

    # -- one candidate --------------------------------------------------------------------
    def evaluate(self, ids: Sequence[int]) -> tuple[CandidateResult, bool]:
        """The result of the network of `ids` and whether it came without training (cache
        hit). Within a round that `prepare_round` screened, a screened network answers its
        shorter training."""
        key = self.space.canonical(ids)
        if key in self._screened:
            result, hit = self._screened[key]
            self._screened[key] = (result, True)  # the same network again is a cache hit
            return result, hit
        if key in self._prefetched:  # trained in parallel for this step
            self._prefetched.discard(key)
            return self.cache[key], False
        if key in self.cache:
            return self.cache[key], True
        self._store(key, self._train(ids, self.settings))
        return self.cache[key], False

    def answered(self, ids: list[int], result: CandidateResult, cache_hit: bool,
                 reward: float) -> None:
        """An environment's step answered `ids` with `result` and `reward`: tell on_result."""
        if self.on_result is not None:
            self.on_result(ids, result, cache_hit, reward)

    def _train(self, ids: Sequence[int], settings: TrainSettings) -> CandidateResult:
        if self.table is None:
            return train_candidate(ids, self.space, self.data, settings)  # type: ignore[arg-type]
        full = self.table.lookup(list(ids), settings.seed)
        # training is seeded and has no schedule, so a shorter training is the same
        # training stopped early: its curves are the first epochs of the full ones
        return dataclasses.replace(full, **{m: getattr(full, m)[:settings.epochs]
                                            for m in METRICS})

    # -- a round of candidates ------------------------------------------------------------
    def prepare_round(self, batch: Sequence[Sequence[int]]) -> None:
        """Before `batch` is stepped: screen it by successive halving (with halving_epochs),
        or train its new networks in parallel (with several workers); else nothing, and each
        step trains its network."""
        if self.halving_epochs:
            screened, survivors = successive_halving(
                self.train_batch, self.space.canonical, batch, self.halving_epochs,
                self.halving_eta, self.epochs)
            self._screened = {self.space.canonical(ids): answer
                              for ids, answer in screened.items()}
            self.prefetch(survivors)
        elif self.workers > 1 and self.table is None:
            self.prefetch(batch)

    def train_batch(self, batch: Sequence[Sequence[int]],
                    epochs: int | None = None) -> list[tuple[CandidateResult, bool]]:
        """(result, cache hit) for every network of `batch`, trained for `epochs` (default:
        a full training) on the workers where not cached. Shorter trainings are cached apart
        from full ones."""
        epochs = epochs or self.epochs
        settings = dataclasses.replace(self.settings, epochs=epochs)

        def key_of(ids: Sequence[int]) -> Key:
            key = self.space.canonical(ids)
            return key if epochs == self.epochs else (*key, f"epochs={epochs}")

        todo: dict[Key, list[int]] = {}
        for ids in batch:
            key = key_of(ids)
            if key not in self.cache and key not in todo:
                todo[key] = [int(i) for i in ids]
        trained = (self.pool.map(list(todo.values()), settings) if self.table is None
                   else [self._train(ids, settings) for ids in todo.values()])
        for key, result in zip(todo, trained):
            self._store(key, result)
        return [(self.cache[key_of(ids)], key_of(ids) not in todo) for ids in batch]

    def prefetch(self, batch: Sequence[Sequence[int]]) -> None:
        """Train the networks of `batch` that are not cached yet, so the steps that follow find
        them (and count them as trained, not as cache hits)."""
        for ids, (_, hit) in zip(batch, self.train_batch(batch)):
            if not hit:
                self._prefetched.add(self.space.canonical(ids))

    @property
    def pool(self) -> CandidatePool:
        """The workers that train candidates, started on first use."""
        if self._pool is None:
            workers = self.workers if self.ray_address else usable_workers(self.workers)
            local = workers <= 1 and self.ray_address is None  # trains in this process
            self._pool = CandidatePool(workers, self.space,  # type: ignore[arg-type]
                                       self.data if local else self.host_data, self.settings,
                                       self.ray_address, self.device)
        return self._pool

    # -- the cache file -------------------------------------------------------------------
    def keep_results_in(self, path: str | Path) -> None:
        """Load the results already in `path` and append every new training to it."""
        self.cache_file = Path(path)
        if self.cache_file.exists():
            self.cache.update(read_cache(self.cache_file))

    def _store(self, key: Key, result: CandidateResult) -> None:
        self.cache[key] = result
        if self.cache_file is not None and self.table is None:  # so a resumed search does
            # not train this one again (a table lookup costs nothing)
            with open(self.cache_file, "a") as f:
                f.write(json.dumps({"key": list(key), **_result_fields(result)}) + "\n")

    def close(self) -> None:
        """Stop the worker processes or Ray actors."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def check_table(table: ArchitectureTable, dataset: str | Dataset,
                space: str | SearchSpace | list, layers: int, epochs: int) -> None:
    """UserError unless the search asks for what `table` holds: its layers, and its data set,
    space and epochs where they are given (not the defaults, which a table replaces)."""
    name = table.meta.get("dataset")
    if layers != table.layers:
        raise UserError(f"the table holds {table.layers}-layer networks: use "
                        f"layers={table.layers}, not {layers}")
    asked = dataset.name if isinstance(dataset, Dataset) else dataset
    if asked not in TABLE_REPLACES and name is not None and asked != name:
        raise UserError(f"the table was built on {name}, not {asked}: drop the dataset option "
                        "or build a table of that data set (gymlab nas build-table)")
    if space != "default":
        wanted = space if isinstance(space, SearchSpace) else load_space(space)
        if wanted.choices != table.space.choices:
            raise UserError(f"the table was built on the space {table.meta.get('space_name')!r},"
                            f" not {wanted.name!r}: drop the space option or build a table "
                            "of that space")
    trained = table.meta["settings"]["epochs"]
    if epochs != DEFAULT_EPOCHS and epochs != trained:
        raise UserError(f"the table's networks were trained {trained} epochs, not {epochs}: "
                        "drop the epochs option")


def resolve_device(device: str) -> str:
    """cpu or cuda for `device` (auto: cuda when torch sees a GPU); a UserError for an
    unknown name or for cuda without a GPU."""
    import torch

    if device not in DEVICES:
        raise UserError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise UserError("device cuda: torch sees no CUDA GPU here (torch "
                        f"{torch.__version__}); use --device cpu or auto")
    return "cuda" if device == "auto" and available else ("cpu" if device == "auto" else device)


def _result_fields(result: CandidateResult) -> dict[str, Any]:
    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
            if f.name != "model"}


def read_cache(path: Path) -> dict[Key, CandidateResult]:
    """Entries of a cache file; a half-written last line (a crash) is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the search's cache {path}: not a text file of JSON "
                        f"lines ({type(exc).__name__}); move it away to train again") from None
    cache = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            key = tuple(entry.pop("key"))
            cache[key] = CandidateResult(**entry)
        except (json.JSONDecodeError, TypeError, KeyError):
            continue
    return cache
