"""GET /health (is the model ready), POST /api/models/load (an extra model) and GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from reranker.sidecar.routes import service_of
from reranker.sidecar.telemetry import CONTENT_TYPE

router = APIRouter(tags=["service"])
open_router = APIRouter(tags=["service"])
"""What answers without the API key."""


@open_router.get("/health", summary="200 once the model is loaded, 503 while loading or failed")
def health(request: Request) -> JSONResponse:
    state = service_of(request).health()
    return JSONResponse(state, status_code=200 if state["status"] == "ok" else 503)


class LoadModel(BaseModel):
    model: str = Field(description="One of RERANKER_EXTRA_MODELS.")


@router.post("/api/models/load", status_code=202, summary="Start loading one of the sidecar's extra models")
def load_model(body: LoadModel, request: Request) -> dict[str, object]:
    """Answers at once with the extra models' states (GET /health lists them too); 400 when the model is not one of
    them, or does not fit in free memory."""
    return service_of(request).load_model(body.model)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(service_of(request).metrics_text(), media_type=CONTENT_TYPE)
