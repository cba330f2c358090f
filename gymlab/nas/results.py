"""What a search keeps of each candidate it scored, and its leaderboard."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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

    @property
    def leaderboard(self) -> list[Candidate]:
        """Distinct built and fully trained architectures, best valid accuracy first."""
        best: dict[str, Candidate] = {}
        for c in self.candidates:
            if c.result.ok and not c.screened and c.result.architecture not in best:
                best[c.result.architecture] = c
        return sorted(best.values(), key=lambda c: (-c.result.best_valid_acc, c.result.params))

    @property
    def best(self) -> Candidate | None:
        board = self.leaderboard
        return board[0] if board else None
