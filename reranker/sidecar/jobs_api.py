"""/api/jobs: submit work too big for one request (JSON batch form or a CSV upload), poll it, fetch results."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Query as QueryParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from reranker.csv_io import TableError, group_pairs, guess_columns, pairs_from_table, read_table, safe_csv_bytes
from reranker.sidecar import limits
from reranker.sidecar.jobs import JobRecord, JobStore, NewPair, ScoredQuery
from reranker.sidecar.runtime import Runtime
from reranker.sidecar.schemas import (
    BatchRerankRequest,
    JobCreated,
    JobItem,
    JobProgress,
    JobQueryResults,
    JobResults,
    JobStatus,
)
from reranker.sidecar.settings import Settings

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
COLUMN_FIELDS = {"query": "query_column", "document": "document_column", "label": "label_column",
                 "instruction": "instruction_column"}

_CREATE_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/BatchRerankRequest"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "CSV or TSV, one (query, document) pair per row; UTF-8 or GBK"},
                **{field: {"type": "string", "description": f"column holding the {role} (guessed from the "
                           "header when left out; an empty value means none)"}
                   for role, field in COLUMN_FIELDS.items()},
            }}},
    },
}


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


@router.post("", status_code=202, response_model=JobCreated, summary="Submit a job (JSON batch form or CSV upload)",
             openapi_extra={"requestBody": _CREATE_BODY})
async def create_job(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        job = await _create_csv_job(request, runtime)
    elif content_type.startswith("application/json") or not content_type:
        job = await _create_json_job(await request.body(), runtime)
    else:
        raise HTTPException(415, f"unsupported content type {content_type!r}: send the batch form as "
                                 "application/json, or a CSV file as the field 'file' of multipart/form-data")
    runtime.wake_jobs()
    return JSONResponse({"id": job.id, "status": job.status}, 202, headers={"Location": f"/api/jobs/{job.id}"})


async def _create_json_job(body: bytes, runtime: Runtime) -> JobRecord:
    try:
        form = BatchRerankRequest.model_validate_json(body or b"")
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)],
                                     body=body) from None
    texts = form.texts()
    limits.check_job(runtime.settings, sum(len(d) for d in texts))
    limits.check_texts(runtime.settings, list(zip(form.queries, texts)), form.instruction, batch=True)
    queries = [(q, form.instruction) for q in form.queries]
    pairs = [NewPair(qnum, d, text) for qnum, docs in enumerate(texts) for d, text in enumerate(docs)]
    return await run_in_threadpool(runtime.store.create, "json", queries, pairs, form.top_n)


async def _create_csv_job(request: Request, runtime: Runtime) -> JobRecord:
    form = await request.form(max_files=1, max_fields=20)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise RequestValidationError([{"loc": ("body", "file"), "type": "missing",
                                       "msg": "upload the table as the multipart form field 'file'"}])
    data = await upload.read()
    mapping: dict[str, str | None] = {}
    for role, field in COLUMN_FIELDS.items():
        value = form.get(field)
        if isinstance(value, str):
            mapping[role] = value.strip() or None
    filename = upload.filename or "upload.csv"
    try:
        columns, queries, pairs = await run_in_threadpool(_pairs_from_upload, data, filename, mapping,
                                                          runtime.settings)
    except TableError as e:
        raise HTTPException(400, str(e)) from None
    return await run_in_threadpool(runtime.store.create, "csv", queries, pairs, None, filename, data, columns)


def _pairs_from_upload(data: bytes, filename: str, mapping: dict[str, str | None], settings: Settings
                       ) -> tuple[dict[str, str | None], list[tuple[str, str | None]], list[NewPair]]:
    """Column mapping (given, else guessed from the header), queries and pairs of an uploaded table."""
    frame = read_table(data, filename, settings.max_job_bytes)
    guessed = guess_columns(frame)
    columns = {role: mapping[role] if role in mapping else guessed.get(role) for role in COLUMN_FIELDS}
    for role in ("query", "document"):
        if columns[role] is None:
            raise RequestValidationError([{
                "loc": ("body", COLUMN_FIELDS[role]), "type": "missing",
                "msg": f"no column looks like the {role}; name it with the form field {COLUMN_FIELDS[role]} "
                       f"(the file has: {', '.join(frame.columns)})"}])
    rows = pairs_from_table(frame, columns["query"], columns["document"], columns["label"], columns["instruction"])
    limits.check_job(settings, len(rows))
    cap = settings.max_document_chars
    for r in rows:
        for role, text in (("query", r.query), ("document", r.document), ("instruction", r.instruction or "")):
            if len(text) > cap:
                raise limits.too_large(f"row {r.row + 1}: the {columns[role]!r} cell has {len(text):,} characters; "
                                       f"the limit is {cap:,} per text (RERANKER_MAX_DOCUMENT_CHARS)")
    labels = {r.row: r.label for r in rows}
    queries: list[tuple[str, str | None]] = []
    pairs: list[NewPair] = []
    for qnum, (query, table_rows) in enumerate(group_pairs(rows)):
        queries.append((query.query, query.instruction))
        pairs.extend(NewPair(qnum, d, doc, row, labels[row])
                     for d, (doc, row) in enumerate(zip(query.documents, table_rows)))
    return columns, queries, pairs


@router.get("", response_model=list[JobStatus], summary="The most recent jobs, newest first")
def list_jobs(request: Request, limit: int = QueryParam(50, ge=1, le=1000)) -> list[JobStatus]:
    store = _runtime(request).store
    return [_status(job) for job in store.recent(limit)]


@router.get("/{job_id}", response_model=JobStatus, summary="A job's status, progress and ETA")
def get_job(job_id: str, request: Request) -> JobStatus:
    return _status(_job_or_404(_runtime(request).store, job_id))


@router.delete("/{job_id}", response_model=JobStatus, summary="Cancel a queued or running job")
def cancel_job(job_id: str, request: Request) -> JobStatus:
    store = _runtime(request).store
    job = _job_or_404(store, job_id)
    if job.status in ("done", "failed"):
        raise HTTPException(409, f"job {job_id} has already finished ({job.status}); there is nothing to cancel")
    return _status(store.cancel(job_id) or job)


@router.post("/{job_id}/retry", response_model=JobStatus, summary="Queue a failed or cancelled job again")
def retry_job(job_id: str, request: Request) -> JobStatus:
    """The pairs it had scored are kept; only the rest are scored."""
    runtime = _runtime(request)
    job = _job_or_404(runtime.store, job_id)
    if job.status not in ("failed", "cancelled"):
        raise HTTPException(409, f"job {job_id} is {job.status}; only a failed or cancelled job can be retried")
    job = runtime.store.requeue(job_id) or job
    runtime.wake_jobs()
    return _status(job)


@router.get("/{job_id}/results", response_model=JobResults, response_model_exclude_none=True,
            summary="A finished job's scores: JSON, or ?format=csv",
            responses={200: {"content": {"text/csv": {}}}})
def job_results(job_id: str, request: Request,
                format: Literal["json", "csv"] = QueryParam("json", description="json or csv")) -> Response:
    store = _runtime(request).store
    job = _job_or_404(store, job_id)
    if job.status != "done":
        state = {"queued": "is waiting to start", "running": f"is running ({job.done_pairs:,} of "
                 f"{job.total_pairs:,} pairs scored)", "failed": f"failed: {job.error}",
                 "cancelled": "was cancelled"}[job.status]
        raise HTTPException(409, f"job {job_id} {state}; results are ready once its status is done")
    top_n = job.top_n if job.kind == "json" else None
    scored = store.results(job_id, top_n)
    if format == "csv":
        frame = _csv_frame(store, job, scored)
        return Response(safe_csv_bytes(frame), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="job-{job_id}-results.csv"'})
    body = JobResults(id=job.id, status=job.status, queries=[
        JobQueryResults(query=sq.query, instruction=sq.instruction, results=[
            JobItem(index=r.index, document=r.document, score=r.score, logit=r.logit, rank=r.rank, tokens=r.tokens,
                    truncated=r.truncated, row=sq.rows[r.index], label=sq.labels[r.index])
            for r in sq.ranked])
        for sq in scored])
    return JSONResponse(body.model_dump(exclude_none=True))


def _csv_frame(store: JobStore, job: JobRecord, scored: list[ScoredQuery]) -> pd.DataFrame:
    """CSV jobs: the uploaded table with score, logit and rank added; JSON jobs: one row per pair, best first."""
    if job.kind == "csv":
        frame = read_table(store.upload(job.id) or b"", job.filename or "", max_bytes=1 << 62)
        score, logit, rank = ([None] * len(frame) for _ in range(3))
        for sq in scored:
            for r in sq.ranked:
                row = sq.rows[r.index]
                score[row], logit[row], rank[row] = r.score, r.logit, r.rank
        for name, values in (("score", score), ("logit", logit), ("rank", rank)):
            frame[_free_column(frame, name)] = values
        return frame
    return pd.DataFrame([
        {"query_index": q, "query": sq.query, "instruction": sq.instruction or "", "rank": r.rank,
         "document_index": r.index, "document": r.document, "score": r.score, "logit": r.logit,
         "tokens": r.tokens, "truncated": r.truncated}
        for q, sq in enumerate(scored) for r in sq.ranked],
        columns=["query_index", "query", "instruction", "rank", "document_index", "document", "score", "logit",
                 "tokens", "truncated"])


def _free_column(frame: pd.DataFrame, name: str) -> str:
    candidate, n = name, 1
    while candidate in frame.columns:
        candidate = f"reranker_{name}" if n == 1 else f"reranker_{name}_{n}"
        n += 1
    return candidate


def _job_or_404(store: JobStore, job_id: str) -> JobRecord:
    job = store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job with id {job_id!r}")
    return job


def _status(job: JobRecord) -> JobStatus:
    total = job.total_pairs
    fraction = round(job.done_pairs / total, 4) if total else 1.0
    return JobStatus(
        id=job.id, status=job.status, kind=job.kind,
        progress=JobProgress(done=job.done_pairs, total=total, fraction=fraction),
        eta_seconds=job.eta_seconds(), created_at=job.created_at, started_at=job.started_at,
        finished_at=job.finished_at, error=job.error, filename=job.filename, columns=job.columns)
