"""The request queue's policy: which waiting requests' pairs go into the next backend call. No threads, no backend:
`RequestQueue` (request_queue.py) calls `SchedulingPolicy` under its lock, runs the call it picks, and tells it
how long that took (`Pace.learn`).

One call does a bounded amount of work (a `Budget`): at most `max_pairs` pairs and `max_chars` characters
(`character_cost`, a cheap stand-in for tokens), and about `slice_seconds` of backend time at the pace of recent
calls. A request bigger than that is served over several calls, in slices, and each call starts with the request
whose turn comes first in fair queueing: its arrival time plus the backend time it has had so far. Requests that
arrive together are served in order; a big one that has had more backend time than a newcomer has waited lets the
newcomer go first, so a small request waits about one slice behind it, not for all of it.

Interactive requests go first; job chunks (the background lane) run when no interactive request waits, and at
least every `fairness` calls, so a busy API cannot stall jobs. While interactive requests keep coming (within
`interactive_window` seconds), a job's call is kept as short as an interactive call, so an asker waits about as
long as its own call takes.

Between two forward passes of a call (a backend that `yields_between_passes`), `call_between_passes` picks the
interactive requests that may go in a call of their own right there: any that wait, during a job's call; during an
interactive call, those one call finishes (a bigger one waits for its turn, as it would have).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from concurrent.futures import Future, InvalidStateError
from contextlib import suppress
from dataclasses import dataclass, field, replace
from itertools import groupby

from reranker.core.ranking import Judgement, Query, character_cost

Verdicts = list[list[Judgement]]
FIRST_CALL_PAIRS = 16
"""Pairs in a call while the pace is not known yet (the first call may meet a slow model and a big request)."""
PACE_WEIGHT = 0.3
"""How much the last call moves the running estimates (backend seconds per character, an interactive call's time)."""
GATHER_MAX_SECONDS = 0.05
"""The longest the worker waits for the last interactive call's clients to send their next requests."""


class Stage(enum.Enum):
    """Where a request is in its life in the queue."""

    WAITING = "waiting"
    """No slice of it went to the backend yet; its client may still cancel its future."""
    STARTED = "started"
    """Its future is running: slices of it go to the backend."""
    ABANDONED = "abandoned"
    """Its client went away: nothing more of it is scored."""


@dataclass(frozen=True)
class Budget:
    """What one backend call may still take."""

    pairs: int
    chars: int

    @property
    def spent(self) -> bool:
        return self.pairs <= 0 or self.chars <= 0

    def less(self, slices: Sequence[Slice]) -> Budget:
        return Budget(self.pairs - sum(len(s.positions) for s in slices), self.chars - sum(s.chars for s in slices))


@dataclass(frozen=True)
class Slice:
    """Some documents of one query of a request: its part of one backend call."""

    request: PendingRequest
    query_index: int
    positions: list[int]
    """Where the slice's documents sit in the request's query."""
    query: Query
    """The request's query with only the slice's documents."""

    @property
    def chars(self) -> int:
        return character_cost(self.query)


class Answers:
    """A request's verdicts, filled in slice by slice (None where none came yet)."""

    def __init__(self, queries: Sequence[Query]) -> None:
        self.verdicts: list[list[Judgement | None]] = [[None] * len(q.documents) for q in queries]
        self.missing = sum(len(group) for group in self.verdicts)

    def fill(self, piece: Slice, verdicts: Sequence[Judgement | None]) -> bool:
        """Put a slice's verdicts in place (None for a pair its call did not score); whether none is missing now."""
        answered = self.verdicts[piece.query_index]
        for position, verdict in zip(piece.positions, verdicts):
            answered[position] = verdict
        self.missing -= sum(verdict is not None for verdict in verdicts)
        return self.missing == 0


@dataclass(eq=False)
class PendingRequest:
    """One submitted request: its queries, its future, how far it was served and what came back."""

    queries: list[Query]
    future: Future[Verdicts]
    background: bool
    """A job's chunk: the background lane."""
    arrival: float
    """When it was submitted (time.monotonic)."""
    stage: Stage = Stage.WAITING
    served_chars: int = 0
    """Characters handed to the backend so far: a stand-in for the backend time it has had (fair queueing)."""
    pair_order: list[tuple[int, int]] = field(init=False)
    """Every pair as (query, document), in the order slices take them: each query's documents longest first, so
    documents of like length share a slice and the engine's passes pad little, as they would had the query been
    judged whole."""
    next_pair: int = field(init=False, default=0)
    """How many of `pair_order` went to the backend (all of them once it failed, or its client gave up)."""
    answers: Answers = field(init=False)

    def __post_init__(self) -> None:
        self.pair_order = [(q, d) for q, query in enumerate(self.queries) for d in _longest_first(query.documents)]
        self.answers = Answers(self.queries)

    @property
    def pairs_left(self) -> int:
        """Pairs not yet handed to the backend."""
        return len(self.pair_order) - self.next_pair

    def start(self) -> bool:
        """Mark its future running, as its first slice is taken; False (and nothing left to take) when its client
        cancelled the future before that, or went away."""
        if self.stage is Stage.WAITING:
            if not self.future.set_running_or_notify_cancel():
                self.next_pair = len(self.pair_order)
                return False
            self.stage = Stage.STARTED
        return self.stage is Stage.STARTED

    def take(self, budget: Budget, at_least_one: bool) -> list[Slice]:
        """The next slices within `budget` (its next pair regardless, if `at_least_one`)."""
        pairs, chars, end = budget.pairs, budget.chars, self.next_pair
        while end < len(self.pair_order) and pairs > 0:
            cost = self._pair_chars(end)
            if cost > chars and not (at_least_one and end == self.next_pair):
                break
            pairs, chars, end = pairs - 1, chars - cost, end + 1
        taken, self.next_pair = self.pair_order[self.next_pair:end], end
        slices = [self._slice_of(q, [d for _, d in run]) for q, run in groupby(taken, key=lambda pair: pair[0])]
        self.served_chars += sum(s.chars for s in slices)
        return slices

    def fits(self, budget: Budget) -> bool:
        """Whether one call of `budget` would take all that is left of it."""
        if self.pairs_left > budget.pairs:
            return False
        return sum(self._pair_chars(n) for n in range(self.next_pair, len(self.pair_order))) <= budget.chars

    def fill(self, piece: Slice, verdicts: Sequence[Judgement | None]) -> None:
        """The slice's verdicts (None for a pair its call did not score: it stopped, as every request in it was
        abandoned); the future resolves with the last one."""
        if self.answers.fill(piece, verdicts):
            with suppress(InvalidStateError):  # it failed meanwhile (close() from another thread)
                self.future.set_result(self.answers.verdicts)  # type: ignore[arg-type]

    def fail(self, error: BaseException) -> None:
        self.next_pair = len(self.pair_order)
        with suppress(InvalidStateError):  # it was answered or failed already
            self.future.set_exception(error)

    def abandon(self, error: BaseException) -> None:
        """Its client went away: score no more of it, and fail its future with `error`."""
        self.stage = Stage.ABANDONED
        self.fail(error)

    def _pair_chars(self, n: int) -> int:
        q, d = self.pair_order[n]
        return character_cost(self.queries[q], [self.queries[q].documents[d]])

    def _slice_of(self, query_index: int, positions: list[int]) -> Slice:
        query = self.queries[query_index]
        return Slice(self, query_index, positions, replace(query, documents=[query.documents[d] for d in positions]))


def _longest_first(documents: Sequence[str]) -> list[int]:
    return sorted(range(len(documents)), key=lambda d: -len(documents[d]))


@dataclass
class Pace:
    """What the calls so far say about the next ones: running averages, each call moving them by PACE_WEIGHT."""

    seconds_per_char: float | None = None
    """Backend seconds per character (`character_cost`); None before the first call."""
    interactive_call_seconds: float | None = None
    """How long an interactive call takes."""
    last_call_requests: int = 0
    """Requests the last call answered, if it was interactive (0 after a job's): their clients' next ones are likely
    on their way."""
    last_call_seconds: float = 0.0

    def learn(self, seconds: float, chars: int, requests: int, background: bool) -> None:
        """A call of `requests` requests scored `chars` characters in `seconds` of its own backend time."""
        if chars:
            self.seconds_per_char = _moved(self.seconds_per_char, seconds / chars)
        self.last_call_requests, self.last_call_seconds = (0, 0.0) if background else (requests, seconds)
        if not background:
            self.interactive_call_seconds = _moved(self.interactive_call_seconds, seconds)

    def gather_seconds(self) -> float:
        """How long to wait for the last call's clients (request_queue's module doc): a tenth of its time, and at
        most GATHER_MAX_SECONDS."""
        return min(GATHER_MAX_SECONDS, self.last_call_seconds / 10)


def _moved(average: float | None, value: float) -> float:
    return value if average is None else PACE_WEIGHT * value + (1 - PACE_WEIGHT) * average


class SchedulingPolicy:
    """The two lanes of waiting requests, and the choice of each backend call's slices from them (module doc).

    Not thread-safe: its owner calls it under one lock. A request stays in its lane until all its pairs went to the
    backend (or it failed, or was abandoned)."""

    def __init__(self, max_pairs: int, max_chars: int, fairness: int, slice_seconds: float,
                 interactive_window: float) -> None:
        self.max_pairs = max_pairs
        self.max_chars = max_chars
        self.fairness = fairness
        self.slice_seconds = slice_seconds
        self.interactive_window = interactive_window
        self.interactive: list[PendingRequest] = []
        self.background: list[PendingRequest] = []
        self.pace = Pace()
        self._calls_since_background = 0
        self._last_interactive_arrival = float("-inf")

    def add(self, request: PendingRequest) -> None:
        (self.background if request.background else self.interactive).append(request)
        if not request.background:
            self._last_interactive_arrival = request.arrival

    def waiting(self) -> list[PendingRequest]:
        """The requests with pairs not yet handed to the backend, interactive first."""
        return [*self.interactive, *self.background]

    def depth(self) -> dict[str, int]:
        return {"interactive": len(self.interactive), "jobs": len(self.background)}

    def drop_finished(self) -> None:
        """Let go of the requests with nothing left to hand out (taken whole, failed, abandoned)."""
        self.interactive[:] = [r for r in self.interactive if r.pairs_left > 0]
        self.background[:] = [r for r in self.background if r.pairs_left > 0]

    def drain(self) -> list[PendingRequest]:
        """Every request waiting, the lanes emptied."""
        left = self.waiting()
        self.interactive, self.background = [], []
        return left

    def expects_more_requests(self) -> bool:
        """Fewer interactive requests wait than the last interactive call answered: worth a moment's wait
        (Pace.gather_seconds) before a call starts with the first of them alone."""
        return len(self.interactive) < self.pace.last_call_requests

    def next_call(self, now: float) -> list[Slice]:
        """The next backend call's slices: from the lane whose turn it is, in fair-queueing order (module doc)."""
        use_background = bool(self.background) and (
            not self.interactive or self._calls_since_background >= self.fairness)
        self._calls_since_background = 0 if use_background else self._calls_since_background + 1
        lane = self.background if use_background else self.interactive
        pace = self.pace.seconds_per_char or 0.0
        in_turn = sorted(lane, key=lambda r: r.arrival + r.served_chars * pace)
        return self._fill(lane, in_turn, self._budget(use_background, now))

    def call_between_passes(self, running: Collection[PendingRequest], background: bool,
                            now: float) -> list[Slice]:
        """The slices of a call to make between two forward passes of the call in flight (of the requests `running`;
        a job's, if `background`): the interactive requests waiting that it does not hold; during an interactive
        call, only those one call finishes. Empty when none may go."""
        whole = Budget(self.max_pairs, self._chars_per_call(False, now))
        newcomers = [r for r in self.interactive if r not in running and (background or r.fits(whole))]
        return self._fill(self.interactive, newcomers, self._budget(False, now)) if newcomers else []

    def _fill(self, lane: list[PendingRequest], candidates: list[PendingRequest], budget: Budget) -> list[Slice]:
        """One call's worth of slices from `candidates` (of `lane`), in their order, until the budget is spent or
        one has nothing that fits; `lane` keeps what is left."""
        call: list[Slice] = []
        for request in candidates:
            if budget.spent:
                break
            if not request.start():
                continue
            slices = request.take(budget, at_least_one=not call)
            if not slices:
                break
            call.extend(slices)
            budget = budget.less(slices)
        lane[:] = [r for r in lane if r.pairs_left > 0]
        return call

    def _budget(self, background: bool, now: float) -> Budget:
        pairs = self.max_pairs if self.pace.seconds_per_char is not None else min(self.max_pairs, FIRST_CALL_PAIRS)
        return Budget(pairs, self._chars_per_call(background, now))

    def _chars_per_call(self, background: bool, now: float) -> int:
        """`max_chars`, or less when recent calls say that much would take longer than `slice_seconds`; a job's
        slice, while interactive requests keep coming, no longer than an interactive call (a request arriving
        during it then waits about as long as it takes itself)."""
        if self.pace.seconds_per_char is None:
            return self.max_chars
        seconds = self.slice_seconds
        asked_lately = now - self._last_interactive_arrival < self.interactive_window
        if background and asked_lately and self.pace.interactive_call_seconds is not None:
            seconds = min(seconds, self.pace.interactive_call_seconds)
        return max(1, min(self.max_chars, int(seconds / self.pace.seconds_per_char)))
