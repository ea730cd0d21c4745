"""Everything one running sidecar holds: the backend (opened in the background), its queue, the job store.

The backend is the in-process engine, or with RERANKER_SERVER another server: the sidecar is then a gateway,
with its own queue, jobs and dialects in front of that server's arithmetic."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import IO

from reranker.backends import open_backend
from reranker.core.addresses import shown_address
from reranker.core.backend import RerankBackend
from reranker.core.calibrated import calibrated
from reranker.core.failures import NotReady, failure_text
from reranker.core.model_names import resolve_model
from reranker.core.ranking import Judgement, Query
from reranker.remote.sidecar import SERVER_NAME
from reranker.sidecar.data_lock import lock_data_dir
from reranker.sidecar.extra_models import ExtraModels
from reranker.sidecar.job_store import JobStore
from reranker.sidecar.job_worker import JobWorker
from reranker.sidecar.request_queue import RequestQueue
from reranker.sidecar.settings import Settings
from reranker.sidecar.telemetry import SidecarMetrics

log = logging.getLogger("reranker.sidecar")


class Runtime:
    def __init__(self, settings: Settings, backend_factory: Callable[[], RerankBackend] | None = None,
                 data_lock: IO[str] | None = None) -> None:
        """backend_factory: how to open the backend (default: RERANKER_SERVER's server, else the model in this
        process); data_lock: the data folder's lock when the caller took it already (see lock_data_dir)."""
        self.settings = settings
        self.backend_factory = backend_factory or (
            lambda: calibrated(open_backend(settings.server, settings.server_key), settings.calibration))
        self.metrics = SidecarMetrics()
        self._data_lock = data_lock or lock_data_dir(settings.data_dir)
        self.store = JobStore(settings.data_dir / "jobs.sqlite3")
        self.backend: RerankBackend | None = None
        self.queue: RequestQueue | None = None
        self.load_error: str | None = None
        self.model_name = shown_address(settings.server) if settings.server else resolve_model(None)
        self._jobs: JobWorker | None = None
        self.extra_models = ExtraModels(settings.extra_models, lambda name: open_backend(name), self._queue_of)
        self._loader = threading.Thread(target=self._load, name="reranker-load", daemon=True)
        self._closed = threading.Event()
        self._settled = threading.Event()
        """Set once loading has ended, in a backend or in a failure."""

    def start(self) -> None:
        """Begin loading the model; /health answers 503 until it is ready, then jobs start running."""
        self._loader.start()

    def _load(self) -> None:
        try:
            self._open()
        finally:
            self._settled.set()

    def _open(self) -> None:
        try:
            backend = self.backend_factory()
        except Exception as e:  # noqa: BLE001 - any failure is reported by /health instead of killing the server
            self.load_error = failure_text(e)
            log.error("the model could not be loaded: %s", e)
            return
        if self._closed.is_set():
            return
        self.queue = self._queue_of(backend)
        self._jobs = JobWorker(self.store, lambda queries: self.queue.submit(queries, background=True),
                               self.settings.job_chunk_pairs, self.settings.job_chunk_delay)
        self.backend = backend
        self.model_name = backend.model_name
        self._jobs.start()
        log.info("backend ready: %s", backend.describe())

    def _queue_of(self, backend: RerankBackend) -> RequestQueue:
        return RequestQueue(backend, self.settings.call_max_pairs, self.settings.call_max_chars,
                            self.settings.max_queue, slice_seconds=self.settings.slice_seconds,
                            interactive_window=self.settings.jobs_yield_seconds, on_call=self.metrics.record_call)

    def stop(self) -> None:
        self._closed.set()
        self._settled.set()
        self.extra_models.close()
        if self._jobs is not None:
            self._jobs.stop()
        if self.queue is not None:
            self.queue.close()
        self.store.close()
        self._data_lock.close()

    @property
    def ready(self) -> bool:
        return self.backend is not None

    def health(self) -> dict[str, object]:
        """`server` tells a client this is a Qwen-Ranker sidecar (reranker.remote reads it)."""
        if self.backend is not None:
            return {"status": "ok", **self.backend.describe(), "server": SERVER_NAME,
                    "extra_models": self.extra_models.states()}
        if self.load_error is not None:
            return {"status": "failed", "server": SERVER_NAME, "model": self.model_name, "device": None,
                    "dtype": None, "error": self.load_error}
        return {"status": "loading", "server": SERVER_NAME, "model": self.model_name, "device": None, "dtype": None}

    def wait_ready(self) -> RequestQueue:
        """The queue once the backend is open; NotReady with the reason when it failed or the runtime stopped."""
        self._settled.wait()
        return self.require_ready()

    def require_ready(self) -> RequestQueue:
        if self.queue is None:
            if self.load_error is not None:
                raise NotReady(f"the model failed to load: {self.load_error}")
            raise NotReady("the model is still loading; retry in a few seconds (GET /health says when it is ready)")
        return self.queue

    async def judge(self, queries: Sequence[Query], model: str | None = None) -> list[list[Judgement]]:
        """Score interactively: queued with the other waiting requests and merged into shared forward passes; by
        the extra model `model` names, else by this sidecar's own."""
        queue = self.queue_for(model)
        answer = queue.submit(queries)
        try:
            return await asyncio.wrap_future(answer)
        except asyncio.CancelledError:  # the client went away (middleware.CancelOnDisconnect)
            queue.abandon(answer)
            raise

    def queue_for(self, model: str | None) -> RequestQueue:
        if model and model in self.extra_models.names and model != self.model_name:
            return self.extra_models.queue(model)
        return self.require_ready()

    def answering(self, model: str | None) -> str:
        """The name of the model that answers a request naming `model`."""
        return model if model and model in self.extra_models.names else self.model_name

    def wake_jobs(self) -> None:
        if self._jobs is not None:
            self._jobs.wake()

    def queue_depth(self) -> dict[str, int]:
        return self.queue.depth() if self.queue is not None else {"interactive": 0, "jobs": 0}
