"""What a search keeps of each candidate it scored, and its leaderboard."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gymlab.nas.objective import Objective, pareto_front
from gymlab.nas.trainer import CandidateResult


@dataclass
class Candidate:
    index: int
    """Position in the search, from 0."""
    ids: list[int]
    """The layer ids as proposed."""
    result: CandidateResult
    cache_hit: bool
    """Answered from the cache (or a table) without training."""
    reward: float
    """The environment's reward for it."""
    screened: bool = False
    """Stopped by successive halving after a shorter training: not on the leaderboard."""


@dataclass
class SearchResult:
    candidates: list[Candidate] = field(default_factory=list)
    run_dir: Path | None = None
    test_accuracy: float | None = None
    """Of the winner retrained longer (retrain_best), else None."""
    outcome: str = "completed"
    """How the search ended: completed, solved, stopped, interrupted (as Algorithm.outcome)."""
    exit_code: int = 0
    """What the CLI exits with (130 after Ctrl-C, 143 after SIGTERM)."""
    objective: Objective = field(default_factory=Objective)
    """What ranks the leaderboard and chooses the best network."""

    @property
    def leaderboard(self) -> list[Candidate]:
        """Distinct built and fully trained architectures, the objective's best first (ties:
        fewer parameters first); infeasible ones (over a cap) last."""
        best: dict[str, Candidate] = {}
        for c in self.candidates:
            if c.result.ok and not c.screened and c.result.architecture not in best:
                best[c.result.architecture] = c
        return sorted(best.values(),
                      key=lambda c: (-self.objective.score(c.result), c.result.params))

    @property
    def best(self) -> Candidate | None:
        """The leaderboard's first network, if it is feasible."""
        board = self.leaderboard
        return board[0] if board and self.objective.feasible(board[0].result) else None

    def pareto(self, size: str = "params") -> list[Candidate]:
        """The leaderboard's networks on the Pareto front of valid accuracy against `size`
        (params or flops), smallest first: none of them is beaten by a network at most as
        large."""
        board = self.leaderboard
        points = [(float(getattr(c.result, size)), c.result.best_valid_acc) for c in board]
        front = [c for c, on in zip(board, pareto_front(points)) if on]
        return sorted(front, key=lambda c: (getattr(c.result, size), -c.result.best_valid_acc))
