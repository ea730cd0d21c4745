"""The sidecar's model and jobs as a backend for code in the same process: the pages of the one-port server score
through the same queue as the API (no HTTP hop), and run their jobs in the same store and worker.

Failures pass through as they are raised (reranker.core.failures), with the words a sidecar over HTTP would send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from typing import Any

from reranker.core.backend import Capabilities, RerankBackend, ScoringStopped, StopScoring
from reranker.core.ranking import Judgement, Progress, Query
from reranker.sidecar.request_queue import RequestQueue
from reranker.sidecar.runtime import Runtime
from reranker.sidecar.service import SidecarService

PROGRESS_SECONDS = 0.5
"""How often a page's thread, waiting for the queue, tells its progress (and may stop it)."""


class QueuedBackend(RerankBackend):
    """A model the runtime holds, judged through its request queue: interactive, merged with the API's requests."""

    def __init__(self, service: SidecarService, queue: RequestQueue, model_name: str) -> None:
        self.service = service
        self.runtime: Runtime = service.runtime
        self.queue = queue
        self.model_name = model_name

    @property
    def capabilities(self) -> Capabilities:
        served = self.queue.backend.capabilities
        return Capabilities(served.kind, served.where, in_process=served.in_process, instruction=served.instruction,
                            query_options=served.query_options, address=served.address, jobs=True,
                            extra_models=bool(self.runtime.extra_models.names), yields_between_passes=True)

    def describe(self) -> dict[str, object]:
        return {**self.queue.backend.describe(), "model": self.model_name}

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        """The queue's verdicts. With `progress`, this thread follows the request every PROGRESS_SECONDS
        (`RequestQueue.progress_of`) and tells it; a progress that raises StopScoring stops the request where the
        queue can (`RequestQueue.stop`), and ScoringStopped carries what was scored. So the pages send a request whole
        and the queue alone cuts it (ARCHITECTURE.md, "Where one request is cut")."""
        future = self.queue.submit(list(queries))
        while progress is not None and not future.done():
            with suppress(FutureTimeout):
                return self._told_at_the_end(future.result(timeout=PROGRESS_SECONDS), progress)
            try:
                progress(*self.queue.progress_of(future))
            except StopScoring:
                partial = self.queue.stop(future)
                if partial is None:  # answered meanwhile: all of it is kept
                    partial = future.result()
                raise ScoringStopped(partial) from None
        verdicts = future.result()
        return verdicts if progress is None else self._told_at_the_end(verdicts, progress)

    @staticmethod
    def _told_at_the_end(verdicts: list[list[Judgement]], progress: Progress) -> list[list[Judgement]]:
        total = sum(len(group) for group in verdicts)
        try:
            progress(total, total)
        except StopScoring:  # stopped at the last report, with everything scored
            raise ScoringStopped(verdicts) from None  # type: ignore[arg-type]
        return verdicts

    def jobs(self) -> LocalJobs:
        return LocalJobs(self.service)

    def extra_models(self) -> dict[str, dict[str, str | None]]:
        return self.runtime.extra_models.states()

    def load_model(self, name: str) -> None:
        self.runtime.extra_models.start(name)

    def with_model(self, name: str) -> RerankBackend:
        return QueuedBackend(self.service, self.runtime.queue_for(name), name)


def hosted_backend(service: SidecarService) -> Callable[[], RerankBackend]:
    """What opens the runtime's own model for a page: waits until it has loaded (NotReady's reason if it failed)."""
    def opened() -> RerankBackend:
        queue = service.runtime.wait_ready()
        return QueuedBackend(service, queue, service.runtime.model_name)

    return opened


class LocalJobs:
    """The job store of this process, as the JobService interface: what a sidecar's job API answers, without HTTP."""

    shown = "this workbench"

    def __init__(self, service: SidecarService) -> None:
        self.service = service

    def submit_table(self, filename: str, data: bytes, columns: Mapping[str, str | None],
                     instruction: str | None = None, passage_tokens: int | None = None,
                     max_passages: int | None = None) -> dict[str, Any]:
        created = asyncio.run(self.service.create_table_job(
            filename, data, dict(columns), instruction or None, passage_tokens, max_passages))
        return created.model_dump()

    def jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        return [job.model_dump() for job in self.service.jobs(limit)]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.service.job(job_id).model_dump()

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.service.cancel(job_id).model_dump()

    def retry(self, job_id: str) -> dict[str, Any]:
        return self.service.retry(job_id).model_dump()

    def results_csv(self, job_id: str) -> bytes:
        return self.service.results_csv(job_id)

    def results_json(self, job_id: str) -> dict[str, Any]:
        return self.service.results(job_id).model_dump(exclude_none=True)
