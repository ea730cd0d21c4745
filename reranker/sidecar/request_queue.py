"""One queue in front of the one engine: waiting requests are cut into slices and merged into engine calls.

Many clients sending a few documents each would otherwise pay a forward pass apiece; the worker thread fills
each `judge_many` call from every request waiting, then gives each request its own verdicts. One call does a
bounded amount of work: at most `max_pairs` pairs and `max_chars` characters, and about `slice_seconds` of
engine time at the pace of recent calls. A request bigger than that is served over several calls, and each
call starts with the request whose turn comes first in fair queueing: its arrival time plus the engine time it
has had so far. Requests that arrive together are served in order; a big one that has had more engine time than
a newcomer has waited lets the newcomer go first, so a small request waits about one slice behind it, not
for all of it. Interactive requests go first; job chunks run when no interactive request
waits (and at least every `fairness` engine calls, so a busy API cannot stall jobs). The slicing needs nothing
but `judge_many`, so it holds whatever backend answers it.

A backend that yields between its forward passes (`capabilities.yields_between_passes`: the engine) lets a
newcomer in sooner: between two passes of a call, the interactive requests waiting that one call can finish (any,
during a job's call) are scored in a call of their own, and the first call goes on where it was; a small request
then waits one forward pass, not one slice, and nothing is computed twice. A request whose client went away
(`abandon`) is scored no further, and a call that holds nothing else stops at its next pass.

Clients that were answered together send their next requests together, a few milliseconds apart; the worker
waits for them briefly (at most a tenth of the last call's time, and 50 ms) rather than starting a call with
the first one alone, which would leave the calls alternating between one request and all the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from contextlib import suppress
from dataclasses import dataclass, field, replace

from reranker.core.backend import BackendError, RerankBackend, ScoringStopped, StopScoring
from reranker.core.ranking import Judgement, Progress, Query, total_tokens
from reranker.sidecar.errors import QueueClosed, QueueFull, RequestAbandoned

Verdicts = list[list[Judgement]]
_GATHER_MAX_SECONDS = 0.05
_FIRST_CALL_PAIRS = 16
"""Pairs in a call while the pace is not known yet (the first call may meet a slow model and a big request)."""
_PACE_WEIGHT = 0.3
"""How much the last call moves the running estimates (engine seconds per character, an interactive call's time)."""
log = logging.getLogger("reranker.sidecar")


@dataclass(frozen=True)
class BackendCall:
    """What one merged engine call did, for the metrics."""

    requests: int
    pairs: int
    tokens: int
    seconds: float
    background: bool


@dataclass
class _Pending:
    """One request: its queries, the verdicts so far, and where the next slice starts."""

    queries: list[Query]
    future: Future[Verdicts]
    background: bool
    arrival: float
    """When it was submitted (time.monotonic)."""
    verdicts: list[list[Judgement | None]] = field(init=False)
    pairs_left: int = field(init=False)
    """Pairs not yet handed to the engine."""
    pairs_unanswered: int = field(init=False)
    served_chars: int = 0
    """Characters handed to the engine so far (a stand-in for its engine time)."""
    started: bool = False
    abandoned: bool = False
    """Its client went away: nothing more of it is scored."""
    _query: int = 0
    _document: int = 0

    def __post_init__(self) -> None:
        self.verdicts = [[None] * len(q.documents) for q in self.queries]
        self.pairs_left = self.pairs_unanswered = sum(len(q.documents) for q in self.queries)
        # Slices follow each query's documents longest first: documents of like length share a slice, and the
        # engine's passes pad little, as they would had the query been judged whole.
        self._orders = [sorted(range(len(q.documents)), key=lambda d, q=q: -len(q.documents[d])) for q in self.queries]

    def take(self, pairs: int, chars: int, at_least_one: bool) -> list[_Slice]:
        """The next slices, up to `pairs` pairs and `chars` characters (one pair regardless, if `at_least_one`)."""
        slices: list[_Slice] = []
        while pairs > 0 and self._query < len(self.queries):
            q = self.queries[self._query]
            shared = len(q.query) + len(q.instruction or "")
            end = self._document
            while end < len(q.documents) and pairs > 0:
                cost = shared + len(q.documents[self._orders[self._query][end]])
                if cost > chars and not (at_least_one and not slices and end == self._document):
                    pairs = 0
                    break
                chars -= cost
                pairs -= 1
                end += 1
            if end > self._document:
                positions = self._orders[self._query][self._document:end]
                slices.append(_Slice(self, self._query, positions,
                                     replace(q, documents=[q.documents[d] for d in positions])))
            self._document = end
            if end == len(q.documents):
                self._query, self._document = self._query + 1, 0
        self.pairs_left -= sum(len(s.query.documents) for s in slices)
        self.served_chars += sum(_chars(s.query) for s in slices)
        return slices

    def fits(self, pairs: int, chars: int) -> bool:
        """Whether one call of `pairs` pairs and `chars` characters would take all that is left of it."""
        if self.pairs_left > pairs:
            return False
        for n in range(self._query, len(self.queries)):
            q = self.queries[n]
            shared = len(q.query) + len(q.instruction or "")
            for d in self._orders[n][self._document if n == self._query else 0:]:
                chars -= shared + len(q.documents[d])
                if chars < 0:
                    return False
        return True

    def fill(self, piece: _Slice, verdicts: Sequence[Judgement | None]) -> None:
        """The slice's verdicts (None for a pair its call did not score: it stopped, as every request in it was
        abandoned)."""
        answered = self.verdicts[piece.query_index]
        for position, verdict in zip(piece.positions, verdicts):
            answered[position] = verdict
        self.pairs_unanswered -= sum(verdict is not None for verdict in verdicts)
        if self.pairs_unanswered == 0:
            with suppress(InvalidStateError):  # it failed meanwhile (close() from another thread)
                self.future.set_result(self.verdicts)  # type: ignore[arg-type]

    def fail(self, error: BaseException) -> None:
        self.pairs_left = 0
        with suppress(InvalidStateError):  # it was answered or failed already
            self.future.set_exception(error)


@dataclass(frozen=True)
class _Slice:
    request: _Pending
    query_index: int
    positions: list[int]
    """Where the slice's documents sit in the request's query."""
    query: Query


class RequestQueue:
    def __init__(self, backend: RerankBackend, max_pairs: int = 1024, max_chars: int = 1_000_000,
                 max_queue: int = 1000, fairness: int = 8, slice_seconds: float = 15.0,
                 interactive_window: float = 10.0, on_call: Callable[[BackendCall], None] | None = None) -> None:
        """interactive_window: seconds after an interactive request during which a job's slices are kept as short
        as an interactive call (0: jobs always get whole slices)."""
        self.backend = backend
        self.max_pairs = max_pairs
        self.max_chars = max_chars
        self.max_queue = max_queue
        self.fairness = fairness
        self.slice_seconds = slice_seconds
        self.interactive_window = interactive_window
        self.on_call = on_call
        self._interactive: list[_Pending] = []
        self._background: list[_Pending] = []
        self._cond = threading.Condition()
        self._closed = False
        self._calls_since_background = 0
        self._last_requests = 0
        self._last_seconds = 0.0
        self._seconds_per_char: float | None = None
        self._interactive_seconds: float | None = None
        self._last_interactive = float("-inf")
        self._running: list[_Pending] = []
        """The requests of the engine call in flight."""
        self._in_between_seconds = 0.0
        """Engine time of the calls served in between the passes of the call in flight (not that call's own)."""
        self._thread = threading.Thread(target=self._loop, name="reranker-queue", daemon=True)
        self._thread.start()

    def submit(self, queries: Sequence[Query], background: bool = False) -> Future[Verdicts]:
        """Queue queries for scoring; the future resolves to one list of Judgements per query."""
        pending = _Pending(list(queries), Future(), background, time.monotonic())
        if pending.pairs_left == 0:
            pending.future.set_result([[] for _ in pending.queries])
            return pending.future
        with self._cond:
            if self._closed:
                raise QueueClosed("the sidecar is shutting down")
            if not background and len(self._interactive) >= self.max_queue:
                raise QueueFull(f"{len(self._interactive)} requests are already waiting for the model "
                                f"(RERANKER_MAX_QUEUE={self.max_queue}); retry shortly")
            (self._background if background else self._interactive).append(pending)
            if not background:
                self._last_interactive = time.monotonic()
            self._cond.notify()
        return pending.future

    def abandon(self, future: Future[Verdicts]) -> None:
        """The client of the request `future` answers went away: score no more of it (a call in flight that holds
        nothing else stops at its next forward pass, where the backend can stop between passes)."""
        with self._cond:
            for pending in [*self._interactive, *self._background, *self._running]:
                if pending.future is future:
                    pending.abandoned = True
                    pending.pairs_left = 0
                    pending.fail(RequestAbandoned("its client went away"))
            self._interactive[:] = [p for p in self._interactive if not p.abandoned]
            self._background[:] = [p for p in self._background if not p.abandoned]

    def depth(self) -> dict[str, int]:
        """Requests waiting (not yet wholly handed to the engine), by queue."""
        with self._cond:
            return {"interactive": len(self._interactive), "jobs": len(self._background)}

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker: whatever still waits fails with QueueClosed, and the engine call in flight gets up to
        `timeout` seconds to finish (a process that exits in the middle of one can abort in torch)."""
        with self._cond:
            self._closed = True
            left = self._interactive + self._background
            self._interactive, self._background = [], []
            self._cond.notify_all()
        for pending in left:
            if pending.started or pending.future.set_running_or_notify_cancel():
                pending.fail(QueueClosed("the sidecar is shutting down"))
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._interactive or self._background or self._closed):
                    self._cond.wait()
                self._gather()
                if self._closed:
                    return
                call = self._take()
                self._running = list({id(piece.request): piece.request for piece in call}.values())
            try:
                self._run(call)
            except Exception as e:  # noqa: BLE001 - the worker must outlive any one call, or every client hangs
                log.exception("engine call failed")
                for piece in call:
                    piece.request.fail(e)
            finally:
                with self._cond:
                    self._running = []

    def _gather(self) -> None:
        """Give the last interactive call's clients a moment to send their next requests (see the module doc)."""
        deadline = time.monotonic() + min(_GATHER_MAX_SECONDS, self._last_seconds / 10)
        while not self._closed and len(self._interactive) < self._last_requests:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _take(self) -> list[_Slice]:
        """The next engine call's slices: from the lane whose turn it is, in fair-queueing order (module doc)."""
        use_background = bool(self._background) and (
            not self._interactive or self._calls_since_background >= self.fairness)
        lane = self._background if use_background else self._interactive
        self._calls_since_background = 0 if use_background else self._calls_since_background + 1
        pace = self._seconds_per_char or 0.0
        return self._slices_of(lane, sorted(lane, key=lambda p: p.arrival + p.served_chars * pace), use_background)

    def _slices_of(self, lane: list[_Pending], candidates: list[_Pending], background: bool) -> list[_Slice]:
        """One call's worth of slices from `candidates` (of `lane`), in their order; `lane` keeps what is left."""
        pairs = self.max_pairs if self._seconds_per_char is not None else min(self.max_pairs, _FIRST_CALL_PAIRS)
        chars = self._chars_per_call(background)
        call: list[_Slice] = []
        for pending in candidates:
            if pairs <= 0 or chars <= 0:
                break
            if not pending.started:
                if not pending.future.set_running_or_notify_cancel():
                    pending.pairs_left = 0  # its client gave up before it started
                    continue
                pending.started = True
            slices = pending.take(pairs, chars, at_least_one=not call)
            if not slices:
                break
            call.extend(slices)
            pairs -= sum(len(s.query.documents) for s in slices)
            chars -= sum(_chars(s.query) for s in slices)
        lane[:] = [p for p in lane if p.pairs_left > 0]
        return call

    def _chars_per_call(self, background: bool) -> int:
        """`max_chars`, or less when recent calls say that much would take longer than `slice_seconds`; a job's
        slice, while interactive requests keep coming, no longer than an interactive call (a request arriving
        during it then waits about as long as it takes itself)."""
        if self._seconds_per_char is None:
            return self.max_chars
        seconds = self.slice_seconds
        recent = time.monotonic() - self._last_interactive < self.interactive_window
        if background and recent and self._interactive_seconds is not None:
            seconds = min(seconds, self._interactive_seconds)
        return max(1, min(self.max_chars, int(seconds / self._seconds_per_char)))

    def _run(self, call: list[_Slice], in_between: bool = False) -> None:
        """One engine call; `in_between`: a call served between the passes of the call in flight."""
        if not call:
            return
        started = time.perf_counter()
        if not in_between:
            self._in_between_seconds = 0.0
        between = self._between_passes(call) if not in_between and _yields_between_passes(self.backend) else None
        try:
            verdicts: Sequence[Sequence[Judgement | None]] = self.backend.judge_many(
                [piece.query for piece in call], between)
        except ScoringStopped as stopped:
            verdicts = stopped.partial
        except BackendError as e:  # the server behind a gateway failed: asking again per request would not help
            for request in {id(piece.request): piece.request for piece in call}.values():
                request.fail(e)
            return
        except Exception:  # noqa: BLE001 - one bad request must not fail the others: each tries alone
            if len({id(piece.request) for piece in call}) == 1:
                raise
            self._run_alone(call)
            return
        seconds = time.perf_counter() - started - (0.0 if in_between else self._in_between_seconds)
        with self._cond:
            for piece, judged in zip(call, verdicts):
                piece.request.fill(piece, judged)
        scored = [replace(piece.query, documents=[d for d, j in zip(piece.query.documents, judged) if j is not None])
                  for piece, judged in zip(call, verdicts)]
        chars = sum(_chars(q) for q in scored)
        if chars:
            pace = seconds / chars
            self._seconds_per_char = pace if self._seconds_per_char is None else (
                _PACE_WEIGHT * pace + (1 - _PACE_WEIGHT) * self._seconds_per_char)
        requests = len({id(piece.request) for piece in call})
        background = call[0].request.background
        self._last_requests, self._last_seconds = (0, 0.0) if background else (requests, seconds)
        if not background:
            self._interactive_seconds = seconds if self._interactive_seconds is None else (
                _PACE_WEIGHT * seconds + (1 - _PACE_WEIGHT) * self._interactive_seconds)
        if self.on_call is not None:
            tokens = total_tokens(j for group in verdicts for j in group if j is not None) or 0
            pairs = sum(len(q.documents) for q in scored)
            self.on_call(BackendCall(requests, pairs, tokens, seconds, background))

    def _between_passes(self, call: list[_Slice]) -> Progress:
        """The progress callback of a call, run between its forward passes: it serves the interactive requests that
        wait and that the call does not hold (any, in a job's call; in an interactive one, those that one call
        finishes: a bigger one waits for its turn, as it would have) in a call of their own, right there, so a
        small request waits one forward pass, not one slice; and it stops the call (StopScoring) when every
        request in it was abandoned."""
        background = call[0].request.background

        def between(done: int, total: int) -> None:
            with self._cond:
                if all(r.abandoned for r in self._running):
                    raise StopScoring
                pairs, chars = self.max_pairs, self._chars_per_call(False)
                newcomers = [p for p in self._interactive if all(p is not r for r in self._running)
                             and (background or p.fits(pairs, chars))]
                if done >= total or not newcomers:
                    return
                inner = self._slices_of(self._interactive, newcomers, background=False)
            served = time.perf_counter()
            try:
                self._run(inner, in_between=True)
            except Exception as e:  # noqa: BLE001 - their failure is theirs, not the call's they came between
                log.exception("engine call failed")
                for piece in inner:
                    piece.request.fail(e)
            self._in_between_seconds += time.perf_counter() - served

        return between

    def _run_alone(self, call: list[_Slice]) -> None:
        by_request: dict[int, list[_Slice]] = {}
        for piece in call:
            by_request.setdefault(id(piece.request), []).append(piece)
        for pieces in by_request.values():
            try:
                verdicts = self.backend.judge_many([piece.query for piece in pieces])
            except Exception as e:  # noqa: BLE001
                pieces[0].request.fail(e)
                continue
            for piece, judged in zip(pieces, verdicts):
                piece.request.fill(piece, judged)


def _yields_between_passes(backend: object) -> bool:
    """Whether `backend` lets its progress callback score in between its passes (any object with judge_many may
    serve the queue)."""
    capabilities = getattr(backend, "capabilities", None)
    return bool(getattr(capabilities, "yields_between_passes", False))


def _chars(q: Query) -> int:
    """A cheap stand-in for a query's tokens: its documents' characters, each with the query and instruction."""
    shared = len(q.query) + len(q.instruction or "")
    return sum(len(d) + shared for d in q.documents)
