"""One queue in front of the one engine: waiting requests are merged into shared forward passes.

Many clients sending a few documents each would otherwise pay a forward pass apiece; the worker thread
takes everything waiting (up to a pair and character cap) and hands it to `judge_many` at once, then
gives each request its own slice of the verdicts. Interactive requests go first; job chunks run when no
interactive request waits (and at least every `fairness` engine calls, so a busy API cannot stall jobs).

Clients that were answered together send their next requests together, a few milliseconds apart; the worker
waits for them briefly (at most a tenth of the last call's time, and 50 ms) rather than starting a call with
the first one alone, which would leave the calls alternating between one request and all the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from reranker import Judgement, Query, Qwen3Reranker
from reranker.sidecar.errors import QueueClosed, QueueFull

Verdicts = list[list[Judgement]]
_GATHER_MAX_SECONDS = 0.05
log = logging.getLogger("reranker.sidecar")


@dataclass
class _Pending:
    queries: list[Query]
    future: Future[Verdicts]
    background: bool
    pairs: int = 0
    chars: int = 0


@dataclass(frozen=True)
class EngineCall:
    """What one merged engine call did, for the metrics."""

    requests: int
    pairs: int
    tokens: int
    seconds: float
    background: bool


class RequestQueue:
    def __init__(self, engine: Qwen3Reranker, max_pairs: int = 256, max_chars: int = 1_000_000,
                 max_queue: int = 1000, fairness: int = 8,
                 on_call: Callable[[EngineCall], None] | None = None) -> None:
        self.engine = engine
        self.max_pairs = max_pairs
        self.max_chars = max_chars
        self.max_queue = max_queue
        self.fairness = fairness
        self.on_call = on_call
        self._interactive: deque[_Pending] = deque()
        self._background: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._calls_since_background = 0
        self._last_requests = 0
        self._last_seconds = 0.0
        self._thread = threading.Thread(target=self._loop, name="reranker-queue", daemon=True)
        self._thread.start()

    def submit(self, queries: Sequence[Query], background: bool = False) -> Future[Verdicts]:
        """Queue queries for scoring; the future resolves to one list of Judgements per query."""
        pending = _Pending(list(queries), Future(), background)
        for q in pending.queries:
            pending.pairs += len(q.documents)
            shared = len(q.query) + len(q.instruction or "")
            pending.chars += sum(len(d) + shared for d in q.documents)
        if pending.pairs == 0:
            pending.future.set_result([[] for _ in pending.queries])
            return pending.future
        with self._cond:
            if self._closed:
                raise QueueClosed("the sidecar is shutting down")
            if not background and len(self._interactive) >= self.max_queue:
                raise QueueFull(f"{len(self._interactive)} requests are already waiting for the model "
                                f"(RERANKER_MAX_QUEUE={self.max_queue}); retry shortly")
            (self._background if background else self._interactive).append(pending)
            self._cond.notify()
        return pending.future

    def depth(self) -> dict[str, int]:
        """Requests waiting (not yet handed to the engine), by queue."""
        with self._cond:
            return {"interactive": len(self._interactive), "jobs": len(self._background)}

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker: whatever still waits fails with QueueClosed, and the engine call in flight gets up to
        `timeout` seconds to finish (a process that exits in the middle of one can abort in torch)."""
        with self._cond:
            self._closed = True
            left = list(self._interactive) + list(self._background)
            self._interactive.clear()
            self._background.clear()
            self._cond.notify_all()
        for pending in left:
            if pending.future.set_running_or_notify_cancel():
                pending.future.set_exception(QueueClosed("the sidecar is shutting down"))
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
            try:
                self._run(call)
            except Exception as e:  # noqa: BLE001 - the worker must outlive any one call, or every client hangs
                log.exception("engine call failed")
                for pending in call:
                    if not pending.future.done():
                        pending.future.set_exception(e)

    def _gather(self) -> None:
        """Give the last interactive call's clients a moment to send their next requests (see the module doc)."""
        deadline = time.monotonic() + min(_GATHER_MAX_SECONDS, self._last_seconds / 10)
        while not self._closed and len(self._interactive) < self._last_requests:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _take(self) -> list[_Pending]:
        """The next engine call's requests: interactive first, background when none wait or fairness is due."""
        use_background = bool(self._background) and (
            not self._interactive or self._calls_since_background >= self.fairness)
        source = self._background if use_background else self._interactive
        self._calls_since_background = 0 if use_background else self._calls_since_background + 1
        call: list[_Pending] = []
        pairs = chars = 0
        while source:
            nxt = source[0]
            if call and (pairs + nxt.pairs > self.max_pairs or chars + nxt.chars > self.max_chars):
                break
            source.popleft()
            if nxt.future.set_running_or_notify_cancel():
                call.append(nxt)
                pairs += nxt.pairs
                chars += nxt.chars
        return call

    def _run(self, call: list[_Pending]) -> None:
        if not call:  # every request taken had been given up by its client
            return
        started = time.perf_counter()
        try:
            verdicts = self.engine.judge_many([q for p in call for q in p.queries])
        except Exception as merged_error:  # noqa: BLE001 - one bad request must not fail the others
            if len(call) == 1:
                call[0].future.set_exception(merged_error)
                return
            for pending in call:
                try:
                    pending.future.set_result(self.engine.judge_many(pending.queries))
                except Exception as e:  # noqa: BLE001
                    pending.future.set_exception(e)
            return
        seconds = time.perf_counter() - started
        background = call[0].background
        self._last_requests, self._last_seconds = (0, 0.0) if background else (len(call), seconds)
        at = 0
        for pending in call:
            n = len(pending.queries)
            pending.future.set_result(verdicts[at:at + n])
            at += n
        if self.on_call is not None:
            tokens = sum(j.tokens for group in verdicts for j in group)
            self.on_call(EngineCall(len(call), sum(p.pairs for p in call), tokens, seconds, background))
