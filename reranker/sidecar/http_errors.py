"""The one place where errors become HTTP answers: a status code per service error, and readable 422s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from reranker.sidecar.errors import (
    Conflict,
    InvalidField,
    InvalidInput,
    NotFound,
    ServiceError,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)

STATUS_CODES: Mapping[type[ServiceError], int] = {
    InvalidInput: 400, NotFound: 404, Conflict: 409, TooLarge: 413, UnsupportedMediaType: 415, InvalidField: 422,
    Unavailable: 503,
}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(ServiceError, _service_error)


def status_code(error: ServiceError) -> int:
    return next(code for kind, code in STATUS_CODES.items() if isinstance(error, kind))


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if isinstance(exc, InvalidField):
        return _field_errors([{"loc": ["body", *exc.location], "msg": str(exc), "type": exc.kind}])
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) and exc.retry_after else None
    return JSONResponse({"detail": str(exc)}, status_code(exc), headers=headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    broken_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken_json is not None:
        where = broken_json.get("loc", ())
        position = f" at character {where[1]}" if len(where) > 1 else ""
        reason = (broken_json.get("ctx") or {}).get("error", broken_json.get("msg", ""))
        return JSONResponse({"detail": f"the request body is not valid JSON{position}: {reason}"}, 400)
    details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]
    for d in details:
        if d["loc"] == ["body"] and d["type"] == "missing":
            d["msg"] = "the request has no body; send a JSON object (see /docs for its fields)"
    return _field_errors(details)


def _field_errors(details: list[dict[str, object]]) -> JSONResponse:
    """422 with FastAPI's `detail` list, plus one `message` line a person can read."""
    message = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in details[:10])  # type: ignore[arg-type]
    return JSONResponse({"detail": details, "message": message}, 422)


def _field(loc: Sequence[object]) -> str:
    """('body', 'documents', 3) -> 'documents[3]'."""
    parts = [p for p in loc if p != "body"] or ["body"]
    out = str(parts[0])
    for p in parts[1:]:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out
