"""The sidecar's model and jobs as a backend for code in the same process: the pages of the one-port server score
through the same queue as the API (no HTTP hop), and run their jobs in the same store and worker.

Failures pass through as they are raised (reranker.core.failures), with the words a sidecar over HTTP would send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reranker.core.backend import Capabilities, RerankBackend
from reranker.core.ranking import Judgement, Progress, Query
from reranker.sidecar.request_queue import RequestQueue
from reranker.sidecar.runtime import Runtime
from reranker.sidecar.service import SidecarService


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
                            extra_models=bool(self.runtime.extra_models.names))

    def describe(self) -> dict[str, object]:
        return {**self.queue.backend.describe(), "model": self.model_name}

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        """The queue's verdicts; `progress` is told only the end: the queue tells no request's progress while it
        runs, nor hands back what it scored when stopped, so this backend does not say `yields_between_passes` and
        the pages send it steps (workbench/scoring_steps.py; ARCHITECTURE.md, "Where one request is cut")."""
        verdicts = self.queue.submit(list(queries)).result()
        if progress is not None:
            total = sum(len(q.documents) for q in queries)
            progress(total, total)
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
