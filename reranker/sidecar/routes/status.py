"""GET /health (is the model ready) and GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from reranker.sidecar.runtime import Runtime
from reranker.sidecar.telemetry import CONTENT_TYPE

router = APIRouter(tags=["service"])


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


@router.get("/health", summary="200 once the model is loaded, 503 while loading or failed")
def health(request: Request) -> JSONResponse:
    state = _runtime(request).health()
    return JSONResponse(state, status_code=200 if state["status"] == "ok" else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    runtime = _runtime(request)
    text = runtime.metrics.render(runtime.queue_depth, runtime.store.counts, runtime.ready)
    return Response(text, media_type=CONTENT_TYPE)
