"""The sidecar's HTTP routes, one module per resource; each only turns HTTP into a service call and back."""

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from reranker.sidecar.service import SidecarService

Body = TypeVar("Body", bound=BaseModel)


def service_of(request: Request) -> SidecarService:
    """The service of the app this request reached (create_app puts it in the app's state)."""
    return request.app.state.service


def parse_body(model: type[Body], body: bytes | dict[str, Any]) -> Body:
    """A body a route reads itself, checked as FastAPI checks a route's own parameter, failing the same way."""
    try:
        return model.model_validate_json(body or b"") if isinstance(body, bytes) else model.model_validate(body)
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)],
                                     body=body) from None
