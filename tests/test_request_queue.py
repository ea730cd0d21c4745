"""The sidecar's request queue in-process, on the tiny real model: who goes first, and who fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from conftest import SCORE_TOLERANCE

from reranker import Judgement, Query, Qwen3Reranker
from reranker.core.failures import QueueClosed, QueueFull
from reranker.core.ranking import Progress
from reranker.sidecar.request_queue import BackendCall, RequestQueue

QUERY = "What is the capital of China?"


class GatedEngine:
    """The real engine behind a gate: calls wait until the test opens it, so requests pile up in the queue."""

    def __init__(self, engine: Qwen3Reranker) -> None:
        self.engine = engine
        self.model_name = engine.model_name
        self.gate = threading.Event()

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        assert self.gate.wait(60), "the test never opened the gate"
        return self.engine.judge_many(queries, progress)


def hold_the_worker(queue: RequestQueue) -> None:
    """Send one request and wait until the worker has taken it to the (closed) gate."""
    queue.submit([Query(QUERY, ["holder"])])
    deadline = time.monotonic() + 10
    while queue.depth()["interactive"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def documents(n: int, tag: str) -> list[str]:
    return [f"{tag} document {i}: Beijing is the capital of China." for i in range(n)]


@pytest.mark.parametrize("fairness", [2, 8])
def test_interactive_requests_go_first_and_jobs_get_every_fairness_th_call(reranker, fairness: int) -> None:
    engine = GatedEngine(reranker)
    calls: list[BackendCall] = []
    queue = RequestQueue(engine, max_pairs=2, fairness=fairness, interactive_window=0, on_call=calls.append)
    try:
        hold_the_worker(queue)
        jobs = [queue.submit([Query(QUERY, documents(2, f"job {n}"))], background=True) for n in range(2)]
        asks = [queue.submit([Query(QUERY, documents(2, f"ask {n}"))]) for n in range(5)]
        engine.gate.set()
        for future in [*jobs, *asks]:
            future.result(60)
    finally:
        engine.gate.set()
        queue.close()
    order = ["job" if call.background else "ask" for call in calls]
    if fairness == 2:  # the holder and one more request, then a job chunk, and so on
        assert order == ["ask", "ask", "job", "ask", "ask", "job", "ask", "ask"]
    else:  # no interactive request waits for a job
        assert order == ["ask"] * 6 + ["job"] * 2
    assert all(call.pairs <= 2 for call in calls)


def test_requests_waiting_together_share_one_engine_call_and_each_gets_its_own_verdicts(reranker) -> None:
    engine = GatedEngine(reranker)
    calls: list[BackendCall] = []
    queue = RequestQueue(engine, on_call=calls.append)
    try:
        hold_the_worker(queue)
        queries = [Query(f"question {n}", documents(n + 1, f"q{n}")) for n in range(3)]
        futures = [queue.submit([q]) for q in queries]
        engine.gate.set()
        answers = [f.result(60) for f in futures]
    finally:
        engine.gate.set()
        queue.close()
    assert [(c.requests, c.pairs) for c in calls] == [(1, 1), (3, 6)]
    for q, [verdicts] in zip(queries, answers):
        assert [j.score for j in verdicts] == pytest.approx(reranker.score(q.query, q.documents), abs=SCORE_TOLERANCE)


def test_a_failing_request_fails_alone(reranker) -> None:
    engine = GatedEngine(reranker)
    queue = RequestQueue(engine)
    try:
        hold_the_worker(queue)
        good = queue.submit([Query(QUERY, documents(2, "good"))])
        bad = queue.submit([Query(QUERY, ["fine", "a lone surrogate \ud800"])])  # the tokenizer cannot encode it
        also_good = queue.submit([Query("什么是重力？", ["重力是一种力。"])])
        engine.gate.set()
        with pytest.raises(Exception):  # noqa: B017 - whatever the tokenizer raises, only this request gets it
            bad.result(60)
        [verdicts] = good.result(60)
        want = reranker.score(QUERY, documents(2, "good"))
        assert [j.score for j in verdicts] == pytest.approx(want, abs=SCORE_TOLERANCE)
        [verdicts] = also_good.result(60)
        expected = reranker.score("什么是重力？", ["重力是一种力。"])
        assert [j.score for j in verdicts] == pytest.approx(expected, abs=SCORE_TOLERANCE)
        assert queue.submit([Query(QUERY, ["still serving"])]).result(60)[0][0].tokens > 0
    finally:
        engine.gate.set()
        queue.close()


def test_a_full_queue_refuses_and_closing_fails_what_waits(reranker) -> None:
    engine = GatedEngine(reranker)
    queue = RequestQueue(engine, max_queue=2)
    hold_the_worker(queue)
    waiting = [queue.submit([Query(QUERY, [f"doc {n}"])]) for n in range(2)]
    with pytest.raises(QueueFull, match="RERANKER_MAX_QUEUE=2"):
        queue.submit([Query(QUERY, ["one too many"])])
    job = queue.submit([Query(QUERY, ["a job chunk"])], background=True)  # jobs are not capped by max_queue
    queue.close(timeout=0)
    for future in [*waiting, job]:
        with pytest.raises(QueueClosed):
            future.result(60)
    with pytest.raises(QueueClosed):
        queue.submit([Query(QUERY, ["after closing"])])
    engine.gate.set()
    queue.close()  # again: now it waits for the call in flight


def test_a_big_request_is_served_in_slices_and_a_newcomer_waits_one_slice(reranker) -> None:
    engine = GatedEngine(reranker)
    calls: list[BackendCall] = []
    queue = RequestQueue(engine, max_pairs=4, on_call=calls.append)
    try:
        hold_the_worker(queue)
        big = queue.submit([Query("big question", documents(12, "big"))])
        small = queue.submit([Query("small question", documents(2, "small"))])
        engine.gate.set()
        [small_verdicts] = small.result(60)
        calls_when_small_was_done = len(calls)
        [big_verdicts] = big.result(60)
    finally:
        engine.gate.set()
        queue.close()
    assert [(c.requests, c.pairs) for c in calls] == [(1, 1), (1, 4), (2, 4), (1, 4), (1, 2)]
    assert calls_when_small_was_done == 3  # the holder, one slice of the big request, then the small one
    assert [j.score for j in small_verdicts] == pytest.approx(
        reranker.score("small question", documents(2, "small")), abs=1e-5)
    assert [j.score for j in big_verdicts] == pytest.approx(
        reranker.score("big question", documents(12, "big")), abs=1e-5)


def test_slices_shrink_to_the_time_asked_for(reranker) -> None:
    calls: list[BackendCall] = []
    queue = RequestQueue(reranker, slice_seconds=1e-9, on_call=calls.append)
    try:
        queue.submit([Query(QUERY, documents(5, "first"))]).result(60)
        [verdicts] = queue.submit([Query(QUERY, documents(3, "timed"))]).result(60)
    finally:
        queue.close()
    # The first call knows no pace yet and takes the whole request; after it, a call is one pair at a time.
    assert [c.pairs for c in calls] == [5, 1, 1, 1]
    assert [j.score for j in verdicts] == pytest.approx(reranker.score(QUERY, documents(3, "timed")), abs=1e-5)


def test_job_slices_shrink_to_an_interactive_call_while_interactive_requests_come(reranker) -> None:
    calls: list[BackendCall] = []
    queue = RequestQueue(reranker, on_call=calls.append)
    try:
        for _ in range(3):  # interactive calls of one pair each teach the queue how long one takes
            queue.submit([Query(QUERY, documents(1, "ask"))]).result(60)
        calls.clear()
        [verdicts] = queue.submit([Query(QUERY, documents(40, "job"))], background=True).result(60)
    finally:
        queue.close()
    assert len(verdicts) == 40 and all(c.background for c in calls)
    assert len(calls) > 4 and calls[0].pairs < 10  # not one call of 40: an asker waits about one interactive call
    assert [j.score for j in verdicts] == pytest.approx(reranker.score(QUERY, documents(40, "job")), abs=1e-5)


class PassWatcher:
    """The real engine (passes of two documents), telling the test when its first pass is done and waiting there
    until the test has sent what it wants to arrive during the call."""

    def __init__(self, engine: Qwen3Reranker) -> None:
        self.engine = engine
        self.model_name = engine.model_name
        self.capabilities = engine.capabilities
        self.first_pass = threading.Event()
        self.go_on = threading.Event()
        self.watching = False

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        def watched(done: int, total: int) -> None:
            if self.watching and not self.first_pass.is_set():
                self.first_pass.set()
                assert self.go_on.wait(30)
            if progress is not None:
                progress(done, total)

        return self.engine.judge_many(queries, watched)


@pytest.fixture
def two_per_pass(tiny_model_dir) -> PassWatcher:
    return PassWatcher(Qwen3Reranker(str(tiny_model_dir), device="cpu", batch_size=2))


def test_a_small_request_goes_in_between_a_big_ones_forward_passes(two_per_pass, reranker) -> None:
    calls: list[BackendCall] = []
    queue = RequestQueue(two_per_pass, on_call=calls.append)
    finished: list[str] = []
    try:
        queue.submit([Query(QUERY, documents(2, "warm"))]).result(60)  # the pace is known: the big one is one call
        two_per_pass.watching = True
        big = queue.submit([Query("big question", documents(40, "big"))])
        big.add_done_callback(lambda _: finished.append("big"))
        assert two_per_pass.first_pass.wait(30)
        small = queue.submit([Query("small question", documents(3, "small"))])
        small.add_done_callback(lambda _: finished.append("small"))
        two_per_pass.go_on.set()
        [small_verdicts] = small.result(60)
        [big_verdicts] = big.result(60)
    finally:
        two_per_pass.go_on.set()
        queue.close()
    assert finished == ["small", "big"]
    # the small request was scored alone between the big call's passes (calls are told as they end), and the big
    # call went on where it was: one call of all 40
    assert [(c.requests, c.pairs) for c in calls] == [(1, 2), (1, 3), (1, 40)]
    assert [j.score for j in small_verdicts] == pytest.approx(
        reranker.score("small question", documents(3, "small")), abs=SCORE_TOLERANCE)
    assert [j.score for j in big_verdicts] == pytest.approx(
        reranker.score("big question", documents(40, "big")), abs=SCORE_TOLERANCE)


def test_a_job_lets_an_interactive_request_in_at_its_next_pass(two_per_pass) -> None:
    calls: list[BackendCall] = []
    queue = RequestQueue(two_per_pass, on_call=calls.append, interactive_window=0)
    try:
        queue.submit([Query(QUERY, documents(2, "warm"))]).result(60)
        two_per_pass.watching = True
        job = queue.submit([Query("job question", documents(20, "job"))], background=True)
        assert two_per_pass.first_pass.wait(30)
        asked = queue.submit([Query(QUERY, documents(1, "asked"))])
        two_per_pass.go_on.set()
        asked.result(60)
        assert not job.done()
        assert len(job.result(60)[0]) == 20
    finally:
        two_per_pass.go_on.set()
        queue.close()
    assert [(c.background, c.pairs) for c in calls] == [(False, 2), (False, 1), (True, 20)]


def test_a_request_whose_client_went_away_stops_at_the_next_pass(two_per_pass) -> None:
    calls: list[BackendCall] = []
    queue = RequestQueue(two_per_pass, on_call=calls.append)
    try:
        queue.submit([Query(QUERY, documents(2, "warm"))]).result(60)
        two_per_pass.watching = True
        gone = queue.submit([Query("big question", documents(40, "big"))])
        assert two_per_pass.first_pass.wait(30)
        queue.abandon(gone)
        two_per_pass.go_on.set()
        with pytest.raises(Exception, match="client went away"):
            gone.result(60)
        after = queue.submit([Query(QUERY, documents(2, "after"))]).result(60)  # the queue goes on serving
    finally:
        two_per_pass.go_on.set()
        queue.close()
    assert len(after[0]) == 2
    assert [c.pairs for c in calls] == [2, 2, 2]  # of the 40, one pass of two was scored


class SlowPasses:
    """The real engine, two documents a pass, each pass a little slow: a page has time to look between them."""

    def __init__(self, tiny_model_dir) -> None:
        self.engine = Qwen3Reranker(str(tiny_model_dir), device="cpu", batch_size=2)
        self.model_name = self.engine.model_name
        self.capabilities = self.engine.capabilities

    def describe(self) -> dict[str, object]:
        return self.engine.describe()

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        def slowly(done: int, total: int) -> None:
            time.sleep(0.03)
            if progress is not None:
                progress(done, total)

        return self.engine.judge_many(queries, slowly)


def test_a_caller_follows_its_request_between_passes_and_stops_it_keeping_what_was_scored(tiny_model_dir,
                                                                                          reranker) -> None:
    queue = RequestQueue(SlowPasses(tiny_model_dir))
    big = documents(40, "big")
    try:
        queue.submit([Query(QUERY, documents(2, "warm"))]).result(60)  # the pace is known: the big one is one call
        followed = queue.submit([Query("big question", big)])
        seen = []
        while not seen or seen[-1][0] < 10:
            seen.append(queue.progress_of(followed))
            time.sleep(0.005)
        partial = queue.stop(followed)
        with pytest.raises(Exception, match="stopped"):
            followed.result(60)
    finally:
        queue.close()
    assert [total for _, total in seen] == [40] * len(seen)
    assert [answered for answered, _ in seen] == sorted(answered for answered, _ in seen)  # it only moves on
    [answers] = partial
    kept = [n for n, judged in enumerate(answers) if judged is not None]
    assert 10 <= len(kept) < 40  # the passes scored before the stop, no more than one pass after it
    assert [answers[n].score for n in kept] == pytest.approx(
        reranker.score("big question", [big[n] for n in kept]), abs=SCORE_TOLERANCE)
    assert queue.stop(followed) is None  # it is gone from the queue


def test_a_page_in_the_one_port_server_sends_its_request_whole_and_cancel_keeps_what_was_scored(
        tiny_model_dir, reranker, tmp_path) -> None:
    """Under ./start.sh a page scores through the API's queue (sidecar/in_process.QueuedBackend): it says it yields
    between passes, so the page sends its request in one call (workbench/scoring_steps.judge_whole), follows it,
    and Cancel (an exception the page's progress raises) keeps the pairs scored in the store."""
    from reranker.analysis.judgement_store import JudgementStore
    from reranker.sidecar.in_process import hosted_backend
    from reranker.sidecar.runtime import Runtime
    from reranker.sidecar.service import SidecarService
    from reranker.sidecar.settings import Settings
    from reranker.workbench.scoring_steps import ScoringProgress, judge_in_steps, sent_whole

    class Cancelled(BaseException):
        """Streamlit stops a script this way: not an Exception."""

    runtime = Runtime(Settings(data_dir=tmp_path), lambda: SlowPasses(tiny_model_dir))
    runtime.start()
    big = documents(40, "big")
    shown: list[ScoringProgress] = []

    def on_progress(progress: ScoringProgress) -> None:
        shown.append(progress)
        if progress.done >= 10:
            raise Cancelled

    try:
        backend = hosted_backend(SidecarService(runtime))()
        store = JudgementStore.in_memory()
        assert sent_whole(backend, [Query("big question", big)])
        with pytest.raises(Cancelled):
            judge_in_steps(store, backend, [Query("big question", big)], on_progress)
        kept = sum(store.kept(backend, [Query("big question", big)])[0])
        [again] = judge_in_steps(store, backend, [Query("big question", big)])
    finally:
        runtime.stop()
    assert store.backend_calls == 2  # one call, stopped; then one for the rest
    assert 10 <= kept < 40 and store.pairs_scored == 40
    assert any(0 < p.done < 40 for p in shown)
    assert [j.score for j in again] == pytest.approx(reranker.score("big question", big), abs=SCORE_TOLERANCE)
