"""The job worker: one job at a time, chunk by chunk, each chunk claimed and committed in the store."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

from reranker.core.ranking import Judgement, Query, in_pair_order, queries_of
from reranker.sidecar.job_store import JobStore

log = logging.getLogger("reranker.sidecar")


class JobWorker:
    """Runs jobs one at a time, chunk by chunk, through the request queue's background lane."""

    def __init__(self, store: JobStore, submit: Callable[[list[Query]], Future[list[list[Judgement]]]],
                 chunk_pairs: int = 32, chunk_delay: float = 0.0) -> None:
        self.store = store
        self.submit = submit
        self.chunk_pairs = chunk_pairs
        self.chunk_delay = chunk_delay
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reranker-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.next_runnable()
            if job is None:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            try:
                self._run(job.id)
            except Exception as e:  # noqa: BLE001 - a broken job must not stop the worker for the others
                log.exception("job %s failed", job.id)
                try:
                    self.store.finish(job.id, "failed", f"{type(e).__name__}: {e}")
                except Exception:  # noqa: BLE001
                    log.exception("could not record the failure of job %s", job.id)
                self._stop.wait(1.0)

    def _run(self, job_id: str) -> None:
        if not self.store.mark_running(job_id):
            return
        job = self.store.get(job_id)
        passages = {"passage_tokens": job.passage_tokens, "max_passages": job.max_passages} if job else {}
        while not self._stop.is_set():
            if self.store.status(job_id) != "running":
                return
            pairs, queries = self.store.claim_chunk(job_id, self.chunk_pairs)
            if not pairs:
                self.store.finish(job_id, "done")
                return
            groups = queries_of((queries[p.qnum][0], p.document, queries[p.qnum][1]) for p in pairs)
            try:
                verdicts = self.submit([replace(q, **passages) for q, _ in groups]).result()
            except Exception as e:  # noqa: BLE001 - the job records why it failed
                if self._stop.is_set():
                    return
                self.store.finish(job_id, "failed", f"{type(e).__name__}: {e}")
                return
            self.store.save_scores(job_id, list(zip(pairs, in_pair_order(groups, verdicts), strict=True)))
            if self.chunk_delay:
                self._stop.wait(self.chunk_delay)
