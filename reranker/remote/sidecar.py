"""Another Qwen-Ranker sidecar as the backend: scoring through its multi-query `/api/rerank`, and what only a sidecar
offers: background jobs (`/api/jobs`) and extra models (`/health`, `/api/models/load`). The one client of a sidecar.

`/api/rerank` reports logits, token counts and truncation and takes the instruction and every query option, so the
scores are exactly the in-process engine's on the same model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from reranker.core.backend import Capabilities, RerankBackend
from reranker.core.ranking import Judgement, Passage, Query
from reranker.formats.columns import COLUMN_FIELDS
from reranker.remote.connection import ServerConnection
from reranker.remote.remote_backend import RemoteBackend, in_input_order

SERVER_NAME = "qwen-ranker-pro"
"""What a sidecar's GET /health says in its `server` field, so a client can tell it from other servers."""
JOB_TIMEOUT = 15.0
"""Seconds to wait for the job API (listing, status, results) before saying the sidecar does not answer."""


class SidecarBackend(RemoteBackend):
    kind = "Qwen-Ranker sidecar"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self.kind, f"server {self.connection.shown}", self.connection.shown, jobs=True,
                            extra_models=True)

    def _judge(self, queries: list[Query]) -> list[list[Judgement]]:
        first = queries[0]
        body: dict[str, Any] = {
            "queries": [q.query for q in queries], "documents": [list(q.documents) for q in queries],
            "instruction": first.instruction, "document_tokens": first.document_tokens,
            "keep_document_end": first.keep_document_end, "refuse_truncation": first.refuse_truncation,
            "passage_tokens": first.passage_tokens, "max_passages": first.max_passages, "model": self.model_name}
        answer = self.connection.post("/api/rerank", body)
        ranked_lists = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(ranked_lists, list) or len(ranked_lists) != len(queries):
            raise self.connection.malformed("/api/rerank", f"not one ranked list for each of {len(queries)} queries")
        return [in_input_order(self.connection, "/api/rerank", ranked, len(q.documents), _judgement)
                for q, ranked in zip(queries, ranked_lists)]

    def jobs(self) -> SidecarJobs:
        return SidecarJobs(self.connection.with_timeout(JOB_TIMEOUT))

    def extra_models(self) -> dict[str, dict[str, str | None]]:
        health = self.connection.get("/health")
        return (health.get("extra_models") if isinstance(health, dict) else None) or {}

    def load_model(self, name: str) -> None:
        self.connection.post("/api/models/load", {"model": name})

    def with_model(self, name: str) -> RerankBackend:
        return SidecarBackend(self.connection, name, self.pairs_per_request, self.concurrency)


class SidecarJobs:
    """A sidecar's job API (docs/API.md, "Jobs"); every failure is a RerankerError naming the sidecar and the fix."""

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.shown = connection.shown

    def submit_table(self, filename: str, data: bytes, columns: Mapping[str, str | None],
                     instruction: str | None = None, passage_tokens: int | None = None,
                     max_passages: int | None = None) -> dict[str, Any]:
        """Start a job on an uploaded table; columns maps query/document/label/instruction to a header (or None);
        `instruction` is for rows without one of their own."""
        form = {COLUMN_FIELDS[role]: name or "" for role, name in columns.items()}
        if instruction:
            form["instruction"] = instruction
        for field, value in (("passage_tokens", passage_tokens), ("max_passages", max_passages)):
            if value is not None:
                form[field] = str(value)
        return self.connection.call("POST", "/api/jobs", files={"file": (filename, data, "text/csv")}, data=form)

    def jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The `limit` most recent jobs, newest first, each as `job()` gives it."""
        jobs = self.connection.get(f"/api/jobs?limit={int(limit)}")
        if not isinstance(jobs, list):
            raise self.connection.malformed("/api/jobs", "not a list of jobs")
        return jobs

    def job(self, job_id: str) -> dict[str, Any]:
        """Status, kind, progress {done, total, fraction}, eta_seconds, created/started/finished_at, error, filename."""
        return self.connection.get(_job_path(job_id))

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.connection.call("DELETE", _job_path(job_id))

    def retry(self, job_id: str) -> dict[str, Any]:
        return self.connection.call("POST", _job_path(job_id, "/retry"))

    def results_csv(self, job_id: str) -> bytes:
        """A done job's pairs in the export schema (reranker.formats.exports), with a table job's other columns."""
        return self.connection.content("GET", _job_path(job_id, "/results?format=csv"))

    def results_json(self, job_id: str) -> dict[str, Any]:
        """A done job's results as the sidecar's JSON document (each query with its documents, best first)."""
        return self.connection.get(_job_path(job_id, "/results"))


def _job_path(job_id: str, rest: str = "") -> str:
    """/api/jobs/<id><rest>, the id quoted whole: an id from a URL or a form never reaches another path."""
    return f"/api/jobs/{quote(job_id, safe='')}{rest}"


def _judgement(item: dict) -> Judgement:
    """An answered item; with passages, the best one (the sidecar answers its offsets, not every passage's)."""
    score, logit = float(item["score"]), float(item["logit"])
    start, end = item.get("passage_start"), item.get("passage_end")
    best = (Passage(int(start), int(end), score, logit),) if start is not None and end is not None else None
    return Judgement(score, logit, item.get("tokens"), item.get("truncated"), best)
