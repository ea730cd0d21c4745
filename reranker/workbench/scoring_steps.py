"""Scoring a page's pairs with progress that moves (done, elapsed time, time left) and a run stopped half-way
(Cancel) that keeps what it scored in the session's judgement store.

The page cuts its work once, and only where the backend cannot give progress itself (docs/ARCHITECTURE.md, "Where
one request is cut"):

- A backend that yields between its forward passes (`Capabilities.yields_between_passes`: the engine in this
  process) gets the whole request in one call. Progress comes from its progress callback, between passes; Cancel
  stops it at the next pass, and the passes done are kept (`judge_whole`).
- Any other backend (a server; under ./start.sh the request queue, which answers a request only when all of it is
  scored) gets steps sized, from the pace so far, to take about STEP_SECONDS each; progress and Cancel come between
  steps, and each finished step is kept (`judge_stepwise`). Queries read as passages go in steps too: the engine
  does not stop between the passes of passages, which stand for their document only all together.

Cancel reaches this code as an exception raised by the page's progress callback (Streamlit stops a script at its
next widget update); it is raised again once what was scored is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate

from reranker.analysis.explanations import Span, explanation_query, spans_of
from reranker.analysis.judgement_store import JudgementStore
from reranker.core.backend import RerankBackend, ScoringStopped, StopScoring
from reranker.core.passages import estimated_spans
from reranker.core.progress import duration_text, seconds_left
from reranker.core.ranking import Judgement, Query, RankedDocument, rank_each

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
    """The estimate of judge_in_steps (by the tokens still to score); None: by the count of pairs done."""

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


OnProgress = Callable[[ScoringProgress], None]


def sent_whole(backend: RerankBackend, queries: Sequence[Query]) -> bool:
    """Whether the page sends `queries` to `backend` in one call (judge_whole), not in steps (judge_stepwise)."""
    return backend.capabilities.yields_between_passes and not any(
        q.passage_tokens is not None or q.max_passages is not None for q in queries)


def judge_in_steps(store: JudgementStore, backend: RerankBackend, queries: Sequence[Query],
                   on_progress: OnProgress | None = None, unit: str = "pairs", step_seconds: float = STEP_SECONDS,
                   clock: Callable[[], float] = time.perf_counter) -> list[list[Judgement]]:
    """Like store.judge_many, with progress and Cancel: in one call where the backend yields between its passes,
    else in steps of about `step_seconds` (the module says why)."""
    if sent_whole(backend, queries):
        return judge_whole(store, backend, queries, on_progress, unit, clock)
    return judge_stepwise(store, backend, queries, on_progress, unit, step_seconds, clock)


def pair_cost(document: str) -> int:
    """A pair's estimated cost in tokens: its document's (estimated) tokens, plus PAIR_TOKENS."""
    return len(estimated_spans(document)) + PAIR_TOKENS


def judge_whole(store: JudgementStore, backend: RerankBackend, queries: Sequence[Query],
                on_progress: OnProgress | None = None, unit: str = "pairs",
                clock: Callable[[], float] = time.perf_counter) -> list[list[Judgement]]:
    """store.judge_many in one call on a backend that yields between its passes: progress from its callback, and
    an exception raised by `on_progress` (Cancel) stops the passes there, keeps those done, and is raised again.

    Time left is told by the tokens still to score at the pace of the tokens scored so far. The backend says only
    how many pairs it has scored, not which: it reads the longest documents first (the engine's passes are sorted so,
    as are the request queue's slices), so the pairs scored are taken to be the longest ones."""
    total = sum(len(q.documents) for q in queries)
    longest_first = sorted((pair_cost(d) for q in store.missing(backend, queries) for d in q.documents), reverse=True)
    tokens_after = list(accumulate(longest_first, initial=0))  # [n]: the tokens scored once n pairs are
    answered_before = total - len(longest_first)
    started = clock()
    stop: list[BaseException] = []

    def told(answered: int, _: int) -> None:
        if stop:  # a backend that cannot stop at once goes on telling
            raise StopScoring
        if on_progress is None:
            return
        now = clock()
        scored = tokens_after[min(max(answered - answered_before, 0), len(longest_first))]
        left = (tokens_after[-1] - scored) * (now - started) / scored if scored else None
        try:
            on_progress(ScoringProgress(answered, total, now - started, unit, left))
        except BaseException as e:  # noqa: BLE001 - Streamlit's stop (Cancel) is a BaseException: raised again below
            stop.append(e)
            raise StopScoring from None

    try:
        judged = store.judge_many(backend, queries, told)
    except ScoringStopped:
        if not stop:
            raise
        raise stop[0] from None
    if stop:  # stopped at the last report, with everything scored and kept
        raise stop[0]
    return judged


def judge_stepwise(store: JudgementStore, backend: RerankBackend, queries: Sequence[Query],
                   on_progress: OnProgress | None = None, unit: str = "pairs", step_seconds: float = STEP_SECONDS,
                   clock: Callable[[], float] = time.perf_counter,
                   first_step: int = FIRST_STEP_PAIRS) -> list[list[Judgement]]:
    """Like store.judge_many, but in steps sized (from the pace so far) to take about `step_seconds` each, the first
    `first_step` pairs.

    Time left is told by the tokens still to score (estimated, plus PAIR_TOKENS a pair) at the pace of the tokens
    scored so far: documents of different lengths, and pairs already in the store (after a Cancel), cost what they
    cost. A query's documents may be split across steps; each pair's judgement does not depend on its neighbours."""
    total = sum(len(q.documents) for q in queries)
    answers: list[list[Judgement | None]] = [[None] * len(q.documents) for q in queries]
    cursor = [(qi, start) for qi, q in enumerate(queries) for start in range(0, len(q.documents))]
    kept = store.kept(backend, queries)
    cost = [0 if kept[qi][d] else pair_cost(queries[qi].documents[d]) for qi, d in cursor]
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
    position, step = 0, first_step
    while position < len(cursor):
        batch = cursor[position:position + step]
        pieces: dict[int, tuple[int, int]] = {}
        for qi, start in batch:
            first, _ = pieces.get(qi, (start, start))
            pieces[qi] = (first, start + 1)
        step_started, scored_before = clock(), store.pairs_scored
        judged = store.judge_many(backend, [replace(queries[qi], documents=queries[qi].documents[a:b])
                                            for qi, (a, b) in pieces.items()],
                                  lambda pairs_done, _, began=step_started: report(pairs_done, began))
        for (qi, (a, b)), judgements in zip(pieces.items(), judged):
            answers[qi][a:b] = judgements
        done += len(batch)
        step_cost = sum(cost[position:position + len(batch)])
        position += len(batch)
        to_score -= step_cost
        if store.pairs_scored > scored_before:  # kept pairs cost nothing and say nothing about the pace
            seconds = max(clock() - step_started, 1e-3)
            scoring_seconds += seconds
            tokens_scored += step_cost
            pace = (store.pairs_scored - scored_before) / seconds
            step = max(1, min(MAX_STEP_PAIRS, int(pace * step_seconds)))
        report()
    return answers  # type: ignore[return-value]


def rank_in_steps(store: JudgementStore, backend: RerankBackend, queries: Sequence[Query],
                  on_progress: OnProgress | None = None, unit: str = "pairs") -> list[list[RankedDocument]]:
    """Each query's documents best first, judged with progress and Cancel (judge_in_steps): what the pages rank
    with."""
    return rank_each(queries, judge_in_steps(store, backend, queries, on_progress, unit))


def explain_in_steps(store: JudgementStore, backend: RerankBackend, query: str, document: str,
                     instruction: str | None = None, on_progress: OnProgress | None = None) -> list[Span]:
    """A card's "Why?" (analysis.explanations): the document and each version without a sentence judged through
    the store with progress, so Cancel keeps what was judged and a second look costs nothing.

    Always in steps, the first of one version (judge_stepwise): every version is about as long as the document, so
    the engine would read the lot in one or two passes of a long document, with no progress between them."""
    bounds, asked = explanation_query(query, document, instruction)
    if not bounds:
        return []
    [judged] = judge_stepwise(store, backend, [asked], on_progress, "versions of the document", first_step=1)
    return spans_of(document, bounds, judged)
