"""Scoring a page's pairs in steps of a few seconds each: progress that moves, with elapsed time and time left, and a
run stopped half-way (Cancel) that keeps every step it finished in the session's score cache."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from reranker.analysis.explanations import Span, explanation_query, spans_of
from reranker.core.backend import RerankBackend
from reranker.core.passages import estimated_spans
from reranker.core.progress import duration_text, seconds_left
from reranker.core.ranking import Judgement, Query, RankedDocument, rank_each
from reranker.workbench.score_cache import ScoreCache, backend_key

STEP_SECONDS = 2.0
FIRST_STEP_PAIRS = 4
MAX_STEP_PAIRS = 512


PAIR_TOKENS = 12
"""A pair's cost beyond its document's tokens (the prompt's end; the query's prefix is shared), in tokens."""


@dataclass(frozen=True)
class ScoringProgress:
    done: int
    total: int
    elapsed: float
    unit: str = "pairs"
    seconds_to_go: float | None = None
    """The estimate of judge_in_steps (by the tokens still to score); None: by the count of pairs."""

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 1.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left; None before there is a pace to go by."""
        if self.seconds_to_go is not None:
            return self.seconds_to_go
        return seconds_left(self.done, self.total, self.elapsed)

    def text(self) -> str:
        eta = self.eta_seconds
        left = "estimating time left" if eta is None else f"about {duration_text(eta)} left"
        return f"Scored {self.done:,} of {self.total:,} {self.unit} · {duration_text(self.elapsed)} elapsed · {left}"


def judge_in_steps(cache: ScoreCache, backend: RerankBackend, queries: Sequence[Query],
                   on_progress: Callable[[ScoringProgress], None] | None = None, unit: str = "pairs",
                   step_seconds: float = STEP_SECONDS,
                   clock: Callable[[], float] = time.perf_counter) -> list[list[Judgement]]:
    """Like cache.judge_many, but in steps sized (from the pace so far) to take about `step_seconds` each.

    Time left is told by the tokens still to score (estimated, plus PAIR_TOKENS a pair) at the pace of the tokens
    scored so far: documents of different lengths, and pairs already in the cache (after a Cancel), cost what they
    cost. A query's documents may be split across steps; each pair's judgement does not depend on its neighbours."""
    total = sum(len(q.documents) for q in queries)
    answers: list[list[Judgement | None]] = [[None] * len(q.documents) for q in queries]
    cursor = [(qi, start) for qi, q in enumerate(queries) for start in range(0, len(q.documents))]
    model = backend_key(backend)
    cost = [0 if cache.key(model, queries[qi], queries[qi].documents[d]) in cache.judgements
            else len(estimated_spans(queries[qi].documents[d])) + PAIR_TOKENS for qi, d in cursor]
    to_score = sum(cost)
    started = clock()
    done, scoring_seconds, tokens_scored = 0, 0.0, 0

    def report(extra: int = 0, step_started: float | None = None) -> None:
        if on_progress is None:
            return
        now = clock()
        left = None
        if tokens_scored:
            left = max(to_score * scoring_seconds / tokens_scored - (now - step_started if step_started else 0), 0)
        on_progress(ScoringProgress(done + extra, total, now - started, unit, left))

    report()
    position, step = 0, FIRST_STEP_PAIRS
    while position < len(cursor):
        batch = cursor[position:position + step]
        pieces: dict[int, tuple[int, int]] = {}
        for qi, start in batch:
            first, _ = pieces.get(qi, (start, start))
            pieces[qi] = (first, start + 1)
        step_started, scored_before = clock(), cache.pairs_scored
        judged = cache.judge_many(backend, [replace(queries[qi], documents=queries[qi].documents[a:b])
                                            for qi, (a, b) in pieces.items()],
                                  lambda pairs_done, _, began=step_started: report(pairs_done, began))
        for (qi, (a, b)), judgements in zip(pieces.items(), judged):
            answers[qi][a:b] = judgements
        done += len(batch)
        step_cost = sum(cost[position:position + len(batch)])
        position += len(batch)
        to_score -= step_cost
        if cache.pairs_scored > scored_before:  # cached pairs cost nothing and say nothing about the pace
            seconds = max(clock() - step_started, 1e-3)
            scoring_seconds += seconds
            tokens_scored += step_cost
            pace = (cache.pairs_scored - scored_before) / seconds
            step = max(1, min(MAX_STEP_PAIRS, int(pace * step_seconds)))
        report()
    return answers  # type: ignore[return-value]


def rank_in_steps(cache: ScoreCache, backend: RerankBackend, queries: Sequence[Query],
                  on_progress: Callable[[ScoringProgress], None] | None = None,
                  unit: str = "pairs") -> list[list[RankedDocument]]:
    """Each query's documents best first, judged in steps (judge_in_steps): what the pages rank with."""
    return rank_each(queries, judge_in_steps(cache, backend, queries, on_progress, unit))


def explain_in_steps(cache: ScoreCache, backend: RerankBackend, query: str, document: str,
                     instruction: str | None = None,
                     on_progress: Callable[[ScoringProgress], None] | None = None) -> list[Span]:
    """A card's "Why?" (analysis.explanations): the document and each version without a sentence judged in steps
    through the cache, so progress moves, Cancel keeps what was judged, and a second look costs nothing."""
    bounds, asked = explanation_query(query, document, instruction)
    if not bounds:
        return []
    [judged] = judge_in_steps(cache, backend, [asked], on_progress, "versions of the document")
    return spans_of(document, bounds, judged)
