"""The settings of a network search, one docstring per field (CLI flags and config.json).
The run's seed (of the searcher and of every candidate's training), logdir and progress bar
are RunConfig's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gymlab.core.config import require

Searcher = Literal["evolution", "random", "ppo", "dqn"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class NASConfig:
    """A network search: data, space, searcher, budget."""

    dataset: str = "digits-shifted"
    """digits-shifted or digits (built in), cifar10 (with --data-dir), or npz (--data-dir
    FILE.npz). digits-shifted places scikit-learn's 8x8 digits at random offsets on a 10x10
    canvas and trains on a fifth of them: networks differ clearly there, while on digits
    many reach 100 percent."""
    data_dir: str | None = None
    """Folder of cifar-10-batches-py, or the .npz file."""
    subset: int | None = None
    """Use only this many examples (shuffled with the split seed) (none: all)."""
    space: str = "default"
    """Search space: default, tutorial, or a JSON/YAML file of layer specs."""
    searcher: Searcher = "evolution"
    """Who proposes architectures: evolution (regularized), random, ppo or dqn."""
    budget: int = 100
    """Candidate networks to evaluate (cache hits count)."""
    layers: int = 5
    """Layer ids per architecture."""
    epochs: int = 6
    """Recorded training epochs per candidate (plus one warm-up epoch)."""
    optimizer: Literal["radam", "adam", "sgd"] = "adam"
    """Candidate optimizer (RAdam's warm-up spends most of a 6-epoch budget on small data)."""
    evaluator: Literal["train", "table"] = "train"
    """train candidates, or look them up in an architecture table (fast, known optimum)."""
    table: str = "digits-default-3"
    """With evaluator=table: a shipped table's name or a .npz built by build_table."""
    reward: Literal["improvement", "accuracy"] = "accuracy"
    """Reward of the RL searchers: improvement of the curves, or the best valid accuracy."""
    population: int = 20
    """evolution: population size."""
    sample_size: int = 5
    """evolution: tournament size."""
    round_size: int = 4
    """Candidates proposed together (ppo/dqn: one per environment), then trained in parallel
    and told back. Results depend on it, not on the number of workers."""
    workers: int = 1
    """Candidates trained at once in worker processes or Ray actors (one torch thread each)."""
    ray_address: str | None = None
    """Train candidates on Ray actors: local (start Ray here), auto or HOST:PORT (join a
    cluster) (none: local processes). Needs the tune extra."""
    halving_epochs: int = 0
    """Successive halving: train each round's candidates this many epochs first and only the
    best 1/halving_eta further, up to epochs (0: off). Use a larger round_size with it."""
    halving_eta: int = 3
    """Successive halving: each rung keeps the best 1/halving_eta of its candidates."""
    retrain_best: int = 0
    """Train the winner this many epochs more and report its test accuracy (0: skip)."""
    objective: Literal["accuracy", "tradeoff"] = "accuracy"
    """What the search maximises: the best valid accuracy, or tradeoff: that accuracy (points)
    minus params_weight points per tenfold parameters and flops_weight per tenfold FLOPs."""
    params_weight: float = 1.0
    """tradeoff: accuracy points that ten times more parameters cost."""
    flops_weight: float = 0.0
    """tradeoff: accuracy points that ten times more FLOPs cost."""
    max_params: int | None = None
    """Networks with more parameters are infeasible: not trained, ranked below every
    feasible one (none: no cap)."""
    max_flops: int | None = None
    """Networks with more FLOPs (of one example's forward pass) are infeasible (none: no
    cap)."""
    device: Device = "auto"
    """Where candidates train: cuda (one GPU per worker or Ray actor, mixed precision), cpu,
    or auto (cuda when there is one)."""

    def __post_init__(self) -> None:
        require(self.budget > 0, f"budget must be positive, got {self.budget}")
        require(self.layers > 0, f"layers must be positive, got {self.layers}")
        require(self.epochs > 0, f"epochs must be positive, got {self.epochs}")
        require(self.population > 1, f"population must be > 1, got {self.population}")
        require(self.sample_size > 0, f"sample_size must be positive, got {self.sample_size}")
        require(self.retrain_best >= 0, f"retrain_best must be >= 0, got {self.retrain_best}")
        require(self.round_size > 0, f"round_size must be positive, got {self.round_size}")
        require(self.workers > 0, f"workers must be positive, got {self.workers}")
        require(self.halving_epochs >= 0,
                f"halving_epochs must be >= 0, got {self.halving_epochs}")
        require(self.halving_epochs < self.epochs or self.halving_epochs == 0,
                f"halving_epochs ({self.halving_epochs}) must be below epochs ({self.epochs})")
        require(self.params_weight >= 0 and self.flops_weight >= 0,
                "params_weight and flops_weight must be >= 0")
        require(self.max_params is None or self.max_params > 0,
                f"max_params must be positive, got {self.max_params}")
        require(self.max_flops is None or self.max_flops > 0,
                f"max_flops must be positive, got {self.max_flops}")
        require(self.halving_eta > 1, f"halving_eta must be > 1, got {self.halving_eta}")
        require(self.halving_epochs == 0 or self.searcher in ("evolution", "random"),
                "successive halving ranks a round of candidates: use it with the evolution "
                "or random searcher")
