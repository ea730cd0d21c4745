"""Scoring a page's pairs in steps of a few seconds each: progress that moves, with elapsed time and time left, and a
run stopped half-way (Cancel) that keeps every step it finished in the session's score cache."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from reranker.core.backend import RerankBackend
from reranker.core.progress import duration_text, seconds_left
from reranker.core.ranking import Judgement, Query, RankedDocument, rank_each
from reranker.workbench.score_cache import ScoreCache

STEP_SECONDS = 2.0
FIRST_STEP_PAIRS = 4
MAX_STEP_PAIRS = 512


@dataclass(frozen=True)
class ScoringProgress:
    done: int
    total: int
    elapsed: float
    unit: str = "pairs"

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 1.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far; None before the first pair is done."""
        return seconds_left(self.done, self.total, self.elapsed)

    def text(self) -> str:
        eta = self.eta_seconds
        left = "estimating time left" if eta is None else f"about {duration_text(eta)} left"
        return f"Scored {self.done:,} of {self.total:,} {self.unit} · {duration_text(self.elapsed)} elapsed · {left}"


def judge_in_steps(cache: ScoreCache, backend: RerankBackend, queries: Sequence[Query],
                   on_progress: Callable[[ScoringProgress], None] | None = None, unit: str = "pairs",
                   step_seconds: float = STEP_SECONDS) -> list[list[Judgement]]:
    """Like cache.judge_many, but in steps sized (from the pace so far) to take about `step_seconds` each.

    A query's documents may be split across steps; each pair's judgement does not depend on its neighbours."""
    total = sum(len(q.documents) for q in queries)
    answers: list[list[Judgement | None]] = [[None] * len(q.documents) for q in queries]
    started = time.perf_counter()
    done = 0

    def report(extra: int = 0) -> None:
        if on_progress is not None:
            on_progress(ScoringProgress(done + extra, total, time.perf_counter() - started, unit))

    report()
    cursor = [(qi, start) for qi, q in enumerate(queries) for start in range(0, len(q.documents))]
    position, step = 0, FIRST_STEP_PAIRS
    while position < len(cursor):
        batch = cursor[position:position + step]
        pieces: dict[int, tuple[int, int]] = {}
        for qi, start in batch:
            first, _ = pieces.get(qi, (start, start))
            pieces[qi] = (first, start + 1)
        step_started, scored_before = time.perf_counter(), cache.pairs_scored
        judged = cache.judge_many(backend, [replace(queries[qi], documents=queries[qi].documents[a:b])
                                            for qi, (a, b) in pieces.items()],
                                  lambda pairs_done, _: report(pairs_done))
        for (qi, (a, b)), judgements in zip(pieces.items(), judged):
            answers[qi][a:b] = judgements
        done += len(batch)
        position += len(batch)
        scored = cache.pairs_scored - scored_before
        if scored:  # the pace of pairs the backend scored; cached ones cost nothing and say nothing about it
            pace = scored / max(time.perf_counter() - step_started, 1e-3)
            step = max(1, min(MAX_STEP_PAIRS, int(pace * step_seconds)))
        report()
    return answers  # type: ignore[return-value]


def rank_in_steps(cache: ScoreCache, backend: RerankBackend, queries: Sequence[Query],
                  on_progress: Callable[[ScoringProgress], None] | None = None,
                  unit: str = "pairs") -> list[list[RankedDocument]]:
    """Each query's documents best first, judged in steps (judge_in_steps): what the pages rank with."""
    return rank_each(queries, judge_in_steps(cache, backend, queries, on_progress, unit))
