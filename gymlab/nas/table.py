"""A table of every architecture of a small space, trained once: lookups instead of training.

It makes strategy comparisons and learning tests fast and gives a known optimum. One table
holds, for each layer-id list of length `layers` and each training seed, the per-epoch
curves, so a search on it behaves as on live training with that seed.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from gymlab.core.errors import UserError
from gymlab.nas.datasets import Dataset
from gymlab.nas.search_space import SearchSpace, load_space
from gymlab.nas.trainer import CandidateResult, TrainSettings
from gymlab.nas.workers import CandidatePool

SHIPPED = Path(__file__).parent / "tables"
"""Tables that come with the package, by name: `digits-default-3`."""


class ArchitectureTable:
    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.suffix and (SHIPPED / f"{path}.npz").is_file():
            path = SHIPPED / f"{path}.npz"
        if not path.is_file():
            shipped = ", ".join(p.stem for p in SHIPPED.glob("*.npz")) or "none"
            raise UserError(f"no architecture table at {path} (shipped tables: {shipped})")
        try:
            with np.load(path, allow_pickle=False) as data:
                self.meta = json.loads(str(data["meta"]))
                self.curves = {m: data[m] for m in ("train_loss", "valid_loss", "valid_acc")}
                self.built, self.params = data["built"], data["params"]
                self.flops, self.seconds = data["flops"], data["seconds"]
                self.reasons = json.loads(str(data["reasons"]))
        except (KeyError, ValueError, OSError) as exc:
            raise UserError(f"{path} is not a gymlab architecture table ({exc})") from None
        self.space = load_space(self.meta["space"])
        self.layers = int(self.meta["layers"])
        self.n_seeds = self.built.shape[1]

    def index(self, ids: list[int]) -> int:
        n = len(self.space)
        if len(ids) != self.layers or any(not 0 <= i < n for i in ids):
            raise UserError(f"the table holds {self.layers}-layer lists of ids 0..{n - 1}")
        return int(np.ravel_multi_index(ids, (n,) * self.layers))

    def lookup(self, ids: list[int], seed: int) -> CandidateResult:
        """The result of training `ids` with training seed number `seed % n_seeds`."""
        i, s = self.index(ids), seed % self.n_seeds
        built = bool(self.built[i, s])
        return CandidateResult(
            self.space.describe(ids), built, "" if built else self.reasons.get(str(i), ""),
            int(self.params[i]), int(self.flops[i]),
            *(self.curves[m][i, s].tolist() if built else [] for m in
              ("train_loss", "valid_loss", "valid_acc")),
            float(self.seconds[i, s]))

    def best(self) -> tuple[float, list[int]]:
        """The known optimum: the highest mean over seeds of the best valid accuracy."""
        acc = np.where(self.built, self.curves["valid_acc"].max(axis=2), 0.0).mean(axis=1)
        i = int(acc.argmax())
        return float(acc[i]), list(np.unravel_index(i, (len(self.space),) * self.layers))


def build_table(out: str | Path, space: SearchSpace, data: Dataset, layers: int,
                settings: TrainSettings, seeds: int = 2, workers: int = 1,
                device: str = "cpu") -> Path:
    """Train every `layers`-long id list of `space` with each of `seeds` training seeds, on
    `device` (cpu or cuda)."""
    n = len(space)
    lists = [list(ids) for ids in itertools.product(range(n), repeat=layers)]
    shape = (len(lists), seeds)
    curves = {m: np.zeros((*shape, settings.epochs), np.float32)
              for m in ("train_loss", "valid_loss", "valid_acc")}
    built = np.zeros(shape, bool)
    seconds = np.zeros(shape, np.float32)
    params, flops = np.zeros(len(lists), np.int64), np.zeros(len(lists), np.int64)
    reasons: dict[str, str] = {}
    for s in range(seeds):
        seeded = TrainSettings(**{**asdict(settings), "seed": settings.seed + s})
        with CandidatePool(workers, space, data, seeded, device=device) as pool:
            for start in range(0, len(lists), 64):
                for i, r in enumerate(pool.map(lists[start : start + 64]), start):
                    built[i, s] = r.ok
                    params[i], flops[i], seconds[i, s] = r.params, r.flops, r.seconds
                    if r.ok:
                        for m in curves:
                            curves[m][i, s] = getattr(r, m)
                    else:
                        reasons[str(i)] = r.reason
                print(f"seed {s + 1}/{seeds}: {min(start + 64, len(lists))}/{len(lists)}",
                      file=sys.stderr, flush=True)
    meta = {"space": space.to_json(), "space_name": space.name, "layers": layers,
            "dataset": data.name, "settings": asdict(settings), "seeds": seeds}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez_compressed(tmp, meta=json.dumps(meta), reasons=json.dumps(reasons), built=built,
                        params=params, flops=flops, seconds=seconds, **curves)
    os.replace(tmp, out)
    return out
