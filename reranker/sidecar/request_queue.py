"""One queue in front of the one backend: waiting requests are cut into slices and merged into backend calls.

Many clients sending a few documents each would otherwise pay a forward pass apiece; the worker thread fills each
`judge_many` call from every request waiting, then gives each request its own verdicts. Which requests' pairs go
into a call, and how much one call may hold, is the policy's (`SchedulingPolicy` in scheduling.py: calls of
bounded work, fair queueing, interactive requests before jobs); this module is the thread that runs the calls it
picks and resolves the requests' futures. The slicing needs nothing but `judge_many`, so it holds whatever backend
answers it.

A backend that yields between its forward passes (`capabilities.yields_between_passes`: the engine) lets a
newcomer in sooner: the call's progress callback (`_BetweenPasses`) serves, between two passes, the interactive
requests the policy lets in (`SchedulingPolicy.call_between_passes`) in a call of their own, and the first call goes
on where it was; a small request then waits one forward pass, not one slice, and nothing is computed twice. That
inner call gets no progress callback, so calls nest one deep at most. A request whose client went away (`abandon`)
is scored no further, and a call that holds nothing else stops at its next pass. A caller in this process may
follow its request (`progress_of`) and stop it keeping what was scored (`stop`): the pages of the one-port server do,
through `in_process.QueuedBackend`, so a page sends its request whole and the queue alone cuts it.

Clients that were answered together send their next requests together, a few milliseconds apart; the worker
waits for them briefly (at most a tenth of the last call's time, and 50 ms) rather than starting a call with
the first one alone, which would leave the calls alternating between one request and all the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

from reranker.core.backend import RerankBackend, ScoringStopped, StopScoring
from reranker.core.failures import QueueClosed, QueueFull, RequestAbandoned, RerankerError
from reranker.core.ranking import Judgement, Progress, Query, character_cost, total_tokens
from reranker.sidecar.scheduling import PendingRequest, SchedulingPolicy, Slice, Stage, Verdicts

log = logging.getLogger("reranker.sidecar")


@dataclass(frozen=True)
class BackendCall:
    """What one merged engine call did, for the metrics."""

    requests: int
    pairs: int
    tokens: int
    seconds: float
    background: bool


class RequestQueue:
    """Requests in, verdicts out through futures; one worker thread runs the backend calls `SchedulingPolicy` picks.

    max_pairs, max_chars, fairness, slice_seconds, interactive_window: the policy's (scheduling.py);
    interactive_window is the seconds after an interactive request during which a job's slices are kept as short
    as an interactive call (0: jobs always get whole slices). max_queue: interactive requests waiting at most
    (QueueFull past it). on_call: told of each backend call, for the metrics.
    """

    def __init__(self, backend: RerankBackend, max_pairs: int = 1024, max_chars: int = 1_000_000,
                 max_queue: int = 1000, fairness: int = 8, slice_seconds: float = 15.0,
                 interactive_window: float = 10.0, on_call: Callable[[BackendCall], None] | None = None) -> None:
        self.backend = backend
        self.max_queue = max_queue
        self.on_call = on_call
        self.policy = SchedulingPolicy(max_pairs, max_chars, fairness, slice_seconds, interactive_window)
        self._cond = threading.Condition()
        """Guards the policy (its lanes, its pace) and `_running`, and wakes the worker."""
        self._closed = False
        self._running: list[PendingRequest] = []
        """The requests of the worker loop's call in flight."""
        self._running_pairs: dict[PendingRequest, int] = {}
        """How many pairs of each of those that call holds."""
        self._running_fraction = 0.0
        """How far that call has got: pairs scored over pairs held, as its last pass told (between passes)."""
        self._between: list[PendingRequest] = []
        """The requests of a call served between two passes of the call in flight."""
        self._thread = threading.Thread(target=self._loop, name="reranker-queue", daemon=True)
        self._thread.start()

    def submit(self, queries: Sequence[Query], background: bool = False) -> Future[Verdicts]:
        """Queue queries for scoring; the future resolves to one list of Judgements per query."""
        request = PendingRequest(list(queries), Future(), background, time.monotonic())
        if request.pairs_left == 0:
            request.future.set_result([[] for _ in request.queries])
            return request.future
        with self._cond:
            if self._closed:
                raise QueueClosed("the sidecar is shutting down")
            if not background and len(self.policy.interactive) >= self.max_queue:
                raise QueueFull(f"{len(self.policy.interactive)} requests are already waiting for the model "
                                f"(RERANKER_MAX_QUEUE={self.max_queue}); retry shortly")
            self.policy.add(request)
            self._cond.notify()
        return request.future

    def abandon(self, future: Future[Verdicts]) -> None:
        """The client of the request `future` answers went away: score no more of it (a call in flight that holds
        nothing else stops at its next forward pass, where the backend can stop between passes)."""
        with self._cond:
            for request in [*self.policy.waiting(), *self._running]:
                if request.future is future:
                    request.abandon(RequestAbandoned("its client went away"))
            self.policy.drop_finished()

    def progress_of(self, future: Future[Verdicts]) -> tuple[int, int]:
        """(pairs answered, pairs asked) of the request `future` answers; the pairs of it in the call in flight count
        by how far that call has got, as its passes tell."""
        with self._cond:
            request = self._find(future)
            if request is None:
                return (1, 1) if future.done() else (0, 1)
            asked = len(request.pair_order)
            answered = asked - request.answers.missing
            return min(answered + round(self._running_pairs.get(request, 0) * self._running_fraction), asked), asked

    def stop(self, future: Future[Verdicts], timeout: float = 30.0) -> list[list[Judgement | None]] | None:
        """Score no more of the request `future` answers (as `abandon` does), wait for a call that holds some of it
        to end or stop at its next pass, and give what was scored: its verdicts, None for each pair not scored.
        None when it is no longer in the queue (answered or failed: its future says)."""
        with self._cond:
            request = self._find(future)
            if request is None:
                return None
            request.abandon(RequestAbandoned("its caller stopped it"))
            self.policy.drop_finished()
            self._cond.wait_for(lambda: request not in (*self._running, *self._between), timeout)
            return [list(group) for group in request.answers.verdicts]

    def depth(self) -> dict[str, int]:
        """Requests waiting (not yet wholly handed to the engine), by queue."""
        with self._cond:
            return self.policy.depth()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker: whatever still waits fails with QueueClosed, and the engine call in flight gets up to
        `timeout` seconds to finish (a process that exits in the middle of one can abort in torch)."""
        with self._cond:
            self._closed = True
            left = self.policy.drain()
            self._cond.notify_all()
        for request in left:
            if request.start():  # not if its client cancelled it: its future is done
                request.fail(QueueClosed("the sidecar is shutting down"))
        self._thread.join(timeout)

    # The worker thread.

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self.policy.waiting() or self._closed):
                    self._cond.wait()
                self._gather()
                if self._closed:
                    return
                call = self.policy.next_call(time.monotonic())
                self._running = _requests_of(call)
                self._running_pairs = _pairs_of(call)
                self._running_fraction = 0.0
            try:
                self._serve(call)
            except Exception as e:  # noqa: BLE001 - the worker must outlive any one call, or every client hangs
                log.exception("engine call failed")
                for piece in call:
                    piece.request.fail(e)
            finally:
                with self._cond:
                    self._running, self._running_pairs = [], {}
                    self._cond.notify_all()  # stop() waits for its request to leave the call

    def _gather(self) -> None:
        """Give the last interactive call's clients a moment to send their next requests (see the module doc)."""
        deadline = time.monotonic() + self.policy.pace.gather_seconds()
        while not self._closed and self.policy.expects_more_requests():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _serve(self, call: list[Slice]) -> None:
        """One call of the worker loop; with a backend that yields between its passes, newcomers are served in
        between (`_between_passes`), and their time is not counted as this call's."""
        if not call:
            return
        between = None
        if _yields_between_passes(self.backend):
            between = _BetweenPasses(partial(self._between_passes, call[0].request.background))
        started = time.perf_counter()
        verdicts = self._judge(call, between)
        if verdicts is not None:
            self._record(call, verdicts, time.perf_counter() - started - (between.seconds if between else 0.0))

    def _between_passes(self, background: bool, done: int, total: int) -> float:
        """Run by the call in flight between two of its forward passes (`done` of `total` pairs scored): stop it
        (StopScoring) when every request in it was abandoned; else serve the interactive requests the policy lets in
        (`SchedulingPolicy.call_between_passes`) in a call of their own, right there, so a small request waits one
        forward pass, not one slice. The seconds that took."""
        with self._cond:
            self._running_fraction = done / total if total else 1.0
            if all(r.stage is Stage.ABANDONED for r in self._running):
                raise StopScoring
            inner = self.policy.call_between_passes(self._running, background, time.monotonic()) if done < total else []
            self._between = _requests_of(inner)
        if not inner:
            return 0.0
        started = time.perf_counter()
        try:
            verdicts = self._judge(inner, None)  # no progress callback: it does not yield in its turn
            if verdicts is not None:
                self._record(inner, verdicts, time.perf_counter() - started)
        except Exception as e:  # noqa: BLE001 - their failure is theirs, not the call's they came between
            log.exception("engine call failed")
            for piece in inner:
                piece.request.fail(e)
        finally:
            with self._cond:
                self._between = []
                self._cond.notify_all()
        return time.perf_counter() - started

    def _judge(self, call: list[Slice], progress: Progress | None) -> Sequence[Sequence[Judgement | None]] | None:
        """The backend's verdicts on the call's slices (None for each pair it did not score: it was stopped). None
        when it failed and each of its requests was told; a call of one request raises its error."""
        try:
            return self.backend.judge_many([piece.query for piece in call], progress)
        except ScoringStopped as stopped:
            return stopped.partial
        except RerankerError as e:  # the server behind a gateway failed: asking again per request would not help
            for request in _requests_of(call):
                request.fail(e)
            return None
        except Exception:  # noqa: BLE001 - one bad request must not fail the others: each tries alone
            if len(_requests_of(call)) == 1:
                raise
            self._run_alone(call)
            return None

    def _record(self, call: list[Slice], verdicts: Sequence[Sequence[Judgement | None]], seconds: float) -> None:
        """Give each request its verdicts, teach the policy the pace (`seconds`: the call's own backend time), and
        tell `on_call`."""
        scored = [[d for d, judged in zip(piece.query.documents, group) if judged is not None]
                  for piece, group in zip(call, verdicts)]
        requests, background = len(_requests_of(call)), call[0].request.background
        with self._cond:
            for piece, group in zip(call, verdicts):
                piece.request.fill(piece, group)
            chars = sum(character_cost(piece.query, documents) for piece, documents in zip(call, scored))
            self.policy.pace.learn(seconds, chars, requests, background)
        if self.on_call is not None:
            tokens = total_tokens(j for group in verdicts for j in group if j is not None) or 0
            pairs = sum(len(documents) for documents in scored)
            self.on_call(BackendCall(requests, pairs, tokens, seconds, background))

    def _run_alone(self, call: list[Slice]) -> None:
        """Each request of a failed call in a call of its own, so that only the one at fault fails."""
        by_request: dict[PendingRequest, list[Slice]] = {}
        for piece in call:
            by_request.setdefault(piece.request, []).append(piece)
        for request, pieces in by_request.items():
            try:
                verdicts = self.backend.judge_many([piece.query for piece in pieces])
            except Exception as e:  # noqa: BLE001
                request.fail(e)
                continue
            with self._cond:
                for piece, group in zip(pieces, verdicts):
                    request.fill(piece, group)


    def _find(self, future: Future[Verdicts]) -> PendingRequest | None:
        """The request `future` answers, while it waits or a call holds some of it (call under the lock)."""
        return next((r for r in (*self.policy.waiting(), *self._running, *self._between) if r.future is future), None)


class _BetweenPasses:
    """The progress callback of a worker-loop call: runs `serve` (RequestQueue._between_passes) between its passes
    and adds up the seconds that took, which are not the call's own."""

    def __init__(self, serve: Callable[[int, int], float]) -> None:
        self._serve = serve
        self.seconds = 0.0

    def __call__(self, done: int, total: int) -> None:
        self.seconds += self._serve(done, total)


def _requests_of(call: list[Slice]) -> list[PendingRequest]:
    """The call's requests, each once, in order."""
    return list(dict.fromkeys(piece.request for piece in call))


def _pairs_of(call: list[Slice]) -> dict[PendingRequest, int]:
    pairs: dict[PendingRequest, int] = {}
    for piece in call:
        pairs[piece.request] = pairs.get(piece.request, 0) + len(piece.positions)
    return pairs


def _yields_between_passes(backend: object) -> bool:
    """Whether `backend` lets its progress callback score in between its passes (any object with judge_many may
    serve the queue)."""
    capabilities = getattr(backend, "capabilities", None)
    return bool(getattr(capabilities, "yields_between_passes", False))
