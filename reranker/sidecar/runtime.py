"""Everything one running sidecar holds: the engine (loaded in the background), its queue, the job store."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import IO

from reranker import Judgement, Query, Qwen3Reranker
from reranker.loading import load_failure_text, resolve_model
from reranker.sidecar.data_lock import lock_data_dir
from reranker.sidecar.errors import NotReady
from reranker.sidecar.job_store import JobStore
from reranker.sidecar.job_worker import JobWorker
from reranker.sidecar.request_queue import RequestQueue
from reranker.sidecar.settings import Settings
from reranker.sidecar.telemetry import SidecarMetrics

log = logging.getLogger("reranker.sidecar")


class Runtime:
    def __init__(self, settings: Settings, engine_factory: Callable[[], Qwen3Reranker] | None = None,
                 data_lock: IO[str] | None = None) -> None:
        """data_lock: the data folder's lock when the caller took it already (see lock_data_dir); else taken here."""
        self.settings = settings
        self.engine_factory = engine_factory or Qwen3Reranker
        self.metrics = SidecarMetrics()
        self._data_lock = data_lock or lock_data_dir(settings.data_dir)
        self.store = JobStore(settings.data_dir / "jobs.sqlite3")
        self.engine: Qwen3Reranker | None = None
        self.queue: RequestQueue | None = None
        self.load_error: str | None = None
        self.model_name = resolve_model(None)
        self._jobs: JobWorker | None = None
        self._loader = threading.Thread(target=self._load, name="reranker-load", daemon=True)
        self._closed = threading.Event()

    def start(self) -> None:
        """Begin loading the model; /health answers 503 until it is ready, then jobs start running."""
        self._loader.start()

    def _load(self) -> None:
        try:
            engine = self.engine_factory()
        except Exception as e:  # noqa: BLE001 - any failure is reported by /health instead of killing the server
            self.load_error = load_failure_text(e)
            log.error("the model could not be loaded: %s", e)
            return
        if self._closed.is_set():
            return
        self.queue = RequestQueue(engine, self.settings.call_max_pairs, self.settings.call_max_chars,
                                  self.settings.max_queue, slice_seconds=self.settings.slice_seconds,
                                  interactive_window=self.settings.jobs_yield_seconds,
                                  on_call=self.metrics.record_call)
        self._jobs = JobWorker(self.store, lambda queries: self.queue.submit(queries, background=True),
                               self.settings.job_chunk_pairs, self.settings.job_chunk_delay)
        self.engine = engine
        self.model_name = engine.model_name
        self._jobs.start()
        log.info("model loaded: %s", engine.describe())

    def stop(self) -> None:
        self._closed.set()
        if self._jobs is not None:
            self._jobs.stop()
        if self.queue is not None:
            self.queue.close()
        self.store.close()
        self._data_lock.close()

    @property
    def ready(self) -> bool:
        return self.engine is not None

    def health(self) -> dict[str, object]:
        if self.engine is not None:
            return {"status": "ok", **self.engine.describe()}
        if self.load_error is not None:
            return {"status": "failed", "model": self.model_name, "device": None, "dtype": None,
                    "error": self.load_error}
        return {"status": "loading", "model": self.model_name, "device": None, "dtype": None}

    def require_ready(self) -> RequestQueue:
        if self.queue is None:
            if self.load_error is not None:
                raise NotReady(f"the model failed to load: {self.load_error}")
            raise NotReady("the model is still loading; retry in a few seconds (GET /health says when it is ready)")
        return self.queue

    async def judge(self, queries: Sequence[Query]) -> list[list[Judgement]]:
        """Score interactively: queued with the other waiting requests and merged into shared forward passes."""
        return await asyncio.wrap_future(self.require_ready().submit(queries))

    def wake_jobs(self) -> None:
        if self._jobs is not None:
            self._jobs.wake()

    def queue_depth(self) -> dict[str, int]:
        return self.queue.depth() if self.queue is not None else {"interactive": 0, "jobs": 0}
