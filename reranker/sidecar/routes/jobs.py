"""/api/jobs: submit work too big for one request (the multi-query form as JSON, or a CSV upload), follow it,
cancel or retry it, fetch its results."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi import Query as QueryParam
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from reranker.core.failures import InvalidField, UnsupportedMediaType
from reranker.formats.columns import COLUMN_FIELDS
from reranker.sidecar.http_errors import ERROR_RESPONSES, ErrorBody
from reranker.sidecar.routes import parse_body, service_of
from reranker.sidecar.schemas import JobCreated, JobResults, JobStatus, MultiQueryRerankRequest

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses={
    **ERROR_RESPONSES, 404: {"model": ErrorBody, "description": "No job with this id"},
    409: {"model": ErrorBody, "description": "The job is not in a state that allows this"}})

_CREATE_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/MultiQueryRerankRequest"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "CSV or TSV, one (query, document) pair per row; UTF-8 or GBK"},
                **{field: {"type": "string", "description": f"column holding the {role} (guessed from the "
                           "header when left out; an empty value means none)"}
                   for role, field in COLUMN_FIELDS.items()},
                "instruction": {"type": "string", "description": "task instruction for rows without one of their "
                                "own (blank: the model's default)"},
                "passage_tokens": {"type": "integer", "description": "judge each document by its best passage of "
                                   "at most this many tokens"},
                "max_passages": {"type": "integer", "description": "with passage_tokens: passages read at most"},
            }}},
    },
}


@router.post("", status_code=202, response_model=JobCreated,
             summary="Submit a job (JSON multi-query form or CSV upload)", openapi_extra={"requestBody": _CREATE_BODY})
async def create_job(request: Request) -> JSONResponse:
    service = service_of(request)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidField(["file"], "upload the table as the multipart form field 'file'", kind="missing")
        columns = {role: value.strip() or None for role, field in COLUMN_FIELDS.items()
                   if isinstance(value := form.get(field), str)}
        instruction = form.get("instruction")
        instruction = instruction.strip() or None if isinstance(instruction, str) else None
        job = await service.create_table_job(upload.filename or "upload.csv", await upload.read(), columns,
                                             instruction, _whole_number(form, "passage_tokens"),
                                             _whole_number(form, "max_passages"))
    elif content_type.startswith("application/json") or not content_type:
        job = await service.create_json_job(parse_body(MultiQueryRerankRequest, await request.body()))
    else:
        raise UnsupportedMediaType(f"unsupported content type {content_type!r}: send the multi-query form as "
                                   "application/json, or a CSV file as the field 'file' of multipart/form-data")
    return JSONResponse(job.model_dump(), 202, headers={"Location": f"/api/jobs/{job.id}"})


@router.get("", response_model=list[JobStatus], summary="The most recent jobs, newest first")
def list_jobs(request: Request, limit: int = QueryParam(50, ge=1, le=1000)) -> list[JobStatus]:
    return service_of(request).jobs(limit)


@router.get("/{job_id}", response_model=JobStatus, summary="A job's status, progress and ETA")
def get_job(job_id: str, request: Request) -> JobStatus:
    return service_of(request).job(job_id)


@router.delete("/{job_id}", response_model=JobStatus, summary="Cancel a queued or running job")
def cancel_job(job_id: str, request: Request) -> JobStatus:
    return service_of(request).cancel(job_id)


@router.post("/{job_id}/retry", response_model=JobStatus, summary="Queue a failed or cancelled job again")
def retry_job(job_id: str, request: Request) -> JobStatus:
    """The pairs it had scored are kept; only the rest are scored."""
    return service_of(request).retry(job_id)


@router.get("/{job_id}/results", response_model=JobResults, response_model_exclude_none=True,
            summary="A finished job's scores: JSON, or ?format=csv",
            responses={200: {"content": {"text/csv": {}}}})
def job_results(job_id: str, request: Request,
                format: Literal["json", "csv"] = QueryParam("json", description="json or csv")) -> Response:
    """A done job's every pair; a cancelled or failed job's, the pairs it had scored (its `status` says which)."""
    service = service_of(request)
    if format == "csv":
        return Response(service.results_csv(job_id), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="job-{job_id}-results.csv"'})
    return JSONResponse(service.results(job_id).model_dump(exclude_none=True))


def _whole_number(form, field: str) -> int | None:
    """A form field holding a whole number of at least 1, or absent; InvalidField naming it otherwise."""
    value = form.get(field)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidField([field], f"{field} is {value[:40]!r}, not a whole number") from None
    if number < 1:
        raise InvalidField([field], f"{field} is {number}; it must be at least 1")
    return number
