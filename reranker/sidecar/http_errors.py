"""The one place where failures become HTTP answers: a status code per kind of failure (reranker.core.failures),
readable 422s, and the error shape of the dialect the client speaks, which each dialect's module gives
(dialects/registry: Cohere reads `message`, TEI `error` and `error_type`, vLLM an error object; our own API
`detail`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from reranker.core.failures import (
    BadRequest,
    Conflict,
    InvalidField,
    ModelLoadError,
    NotFound,
    QueueFull,
    RequestAbandoned,
    RerankerError,
    ServerFailed,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from reranker.sidecar.dialects.registry import Dialect, dialect_of_path

STATUS_CODES: Mapping[type[RerankerError], int] = {
    InvalidField: 422, UnsupportedMediaType: 415, TooLarge: 413, BadRequest: 400, NotFound: 404, Conflict: 409,
    Unavailable: 503, ModelLoadError: 503, ServerFailed: 502, RequestAbandoned: 499, RerankerError: 500,
}
"""Each failure's status on the way out (remote/connection maps statuses back on the way in). The first kind an
error is an instance of decides, so a kind comes before the kinds it belongs to."""
_DETAILS_SHOWN = 20
"""Field errors listed in one 422 (a 20 MB body of the wrong shape would otherwise list thousands)."""


class ErrorBody(BaseModel):
    """What an error answer holds, whichever dialect's shape it takes."""

    detail: str | list[dict[str, Any]] | None = None
    message: str | None = None
    error: str | None = None
    error_type: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "Bad input: the message names the field"), (413, "Over a size limit, named with its setting"),
        (415, "The body is not JSON"), (422, "A field is missing or of the wrong type"),
        (502, "The sidecar is a gateway (RERANKER_SERVER) and the server behind it failed"),
        (503, "The model is loading or failed to load, or the queue is full (Retry-After)"))}
"""The error answers every rerank and job route may give, for the OpenAPI schema."""


def set_dialect(request: Request, dialect: Dialect) -> None:
    """For a route that learns the dialect from the body (/rerank): errors from here on take its shape."""
    request.state.dialect = dialect


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(RerankerError, _failure)
    app.add_exception_handler(HTTPException, _http_error)


def status_code(error: RerankerError) -> int:
    return next(code for kind, code in STATUS_CODES.items() if isinstance(error, kind))


def error_answer(dialect: Dialect, status: int, message: str, details: list[dict[str, Any]] | None = None,
                 headers: Mapping[str, str] | None = None, overloaded: bool = False) -> JSONResponse:
    """The error in the dialect's shape; `overloaded`: too many requests wait (TEI names that apart)."""
    return JSONResponse(dialect.error_body(status, message, details, overloaded), status,
                        headers=dict(headers) if headers else None)


def _dialect(request: Request) -> Dialect:
    return getattr(request.state, "dialect", None) or dialect_of_path(request.url.path)


async def _failure(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RerankerError)
    if isinstance(exc, InvalidField):
        return _field_errors(request, [{"loc": ["body", *exc.location], "msg": str(exc), "type": exc.kind}])
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) and exc.retry_after else None
    return error_answer(_dialect(request), status_code(exc), str(exc), headers=headers,
                        overloaded=isinstance(exc, QueueFull))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (no such route, wrong method, a body FastAPI could not read), in the dialect's shape."""
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if message == "There was an error parsing the body":
        message = _unreadable_body(exc.__cause__)
    return error_answer(_dialect(request), exc.status_code, message, headers=exc.headers)


def _unreadable_body(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        byte = cause.object[cause.start:cause.start + 1]
        return (f"the request body is not valid {cause.encoding.upper()} (byte {cause.start} is {byte!r}); send "
                "JSON encoded as UTF-8")
    if isinstance(cause, RecursionError):
        return "the request body nests arrays or objects too deeply to read; send a flatter JSON object"
    return f"the request body could not be read as JSON ({type(cause).__name__}: {cause})"


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    broken_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken_json is not None:
        where = broken_json.get("loc", ())
        position = f" at character {where[1]}" if len(where) > 1 else ""
        reason = (broken_json.get("ctx") or {}).get("error", broken_json.get("msg", ""))
        return error_answer(_dialect(request), 400, f"the request body is not valid JSON{position}: {reason}")
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type.lower() and any(list(e.get("loc", ())) == ["body"] for e in errors):
        return error_answer(_dialect(request), 415, f"the body was sent as {content_type!r}; send it as JSON, with "
                                                    "the header 'Content-Type: application/json'")
    details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]
    for d in details:
        if d["loc"] == ["body"] and d["type"] == "missing":
            d["msg"] = "the request has no body; send a JSON object (see /docs for its fields)"
    return _field_errors(request, details)


def _field_errors(request: Request, details: list[dict[str, Any]]) -> JSONResponse:
    """422 with FastAPI's `detail` list (at most _DETAILS_SHOWN of it), and one `message` line a person can read."""
    message = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in details[:10])
    if len(details) > 10:
        message += f"; and {len(details) - 10:,} more"
    return error_answer(_dialect(request), 422, message, details[:_DETAILS_SHOWN])


def _field(loc: Sequence[object]) -> str:
    """('body', 'documents', 3) -> 'documents[3]'."""
    parts = [p for p in loc if p != "body"] or ["body"]
    out = str(parts[0])
    for p in parts[1:]:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out
