"""The sidecar's FastAPI app: thin routes over the engine, the queue and the job store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.types import Scope

from reranker import Query, Qwen3Reranker, rank_judgements
from reranker.sidecar import limits
from reranker.sidecar.batcher import BatcherClosed, QueueFull
from reranker.sidecar.jobs_api import router as jobs_router
from reranker.sidecar.metrics import CONTENT_TYPE
from reranker.sidecar.middleware import BearerAuthMiddleware, BodyLimitMiddleware, MetricsMiddleware
from reranker.sidecar.runtime import NotReady, Runtime
from reranker.sidecar.schemas import (
    BatchRerankRequest,
    BatchRerankResponse,
    RankedItem,
    RerankDocument,
    RerankRequest,
    RerankResponse,
    RerankResult,
    Usage,
    document_text,
)
from reranker.sidecar.settings import Settings

DESCRIPTION = """Qwen3-Reranker over HTTP, beside the Qwen-Ranker Pro workbench.

* `POST /v1/rerank` speaks the Jina / Cohere / vLLM rerank shape.
* `POST /api/rerank` ranks several queries' documents in one call.
* `/api/jobs` takes work too big for one request (JSON or a CSV upload), persisted in SQLite.

With `RERANKER_API_KEY` set, every endpoint but `/health` needs `Authorization: Bearer <key>`.
"""


def create_app(settings: Settings | None = None, engine_factory: Callable[[], Qwen3Reranker] | None = None
               ) -> FastAPI:
    settings = settings or Settings.from_env()
    runtime = Runtime(settings, engine_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        yield
        runtime.stop()

    # FastAPIOffline serves the /docs page's scripts itself: it works where no CDN can be reached.
    app = FastAPIOffline(title="Qwen-Ranker Pro sidecar", description=DESCRIPTION, version="1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(jobs_router)
    _add_error_handlers(app)

    def body_limit(scope: Scope) -> tuple[int, str]:
        if scope["path"].rstrip("/") == "/api/jobs" and scope["method"] == "POST":
            return settings.max_job_bytes, "RERANKER_MAX_JOB_BYTES"
        return settings.max_body_bytes, "RERANKER_MAX_BODY_BYTES"

    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    if settings.api_key:
        app.add_middleware(BearerAuthMiddleware, key=settings.api_key)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)

    @app.post("/v1/rerank", response_model=RerankResponse, response_model_exclude_none=True, tags=["rerank"],
              summary="Rerank documents for one query (Jina / Cohere / vLLM shape)")
    async def rerank_v1(body: RerankRequest) -> RerankResponse:
        documents = [document_text(d) for d in body.documents]
        limits.check_interactive(settings, [(body.query, documents)], body.instruction, batch=False)
        [judgements] = await runtime.judge([Query(body.query, documents, body.instruction)])
        ranked = rank_judgements(documents, judgements, body.top_n)
        return RerankResponse(
            id=f"rerank-{uuid.uuid4().hex}",
            model=runtime.model_name,
            results=[RerankResult(index=r.index, relevance_score=r.score,
                                  document=RerankDocument(text=r.document) if body.return_documents else None)
                     for r in ranked],
            usage=Usage(total_tokens=sum(j.tokens for j in judgements)),
        )

    @app.post("/api/rerank", response_model=BatchRerankResponse, tags=["rerank"],
              summary="Rank several queries' documents in one call")
    async def rerank_batch(body: BatchRerankRequest) -> BatchRerankResponse:
        texts = body.texts()
        limits.check_interactive(settings, list(zip(body.queries, texts)), body.instruction, batch=True)
        verdicts = await runtime.judge([Query(q, d, body.instruction) for q, d in zip(body.queries, texts)])
        results = [[RankedItem(index=r.index, document=r.document, score=r.score, logit=r.logit, rank=r.rank,
                               tokens=r.tokens, truncated=r.truncated)
                    for r in rank_judgements(docs, judgements, body.top_n)]
                   for docs, judgements in zip(texts, verdicts)]
        tokens = sum(j.tokens for group in verdicts for j in group)
        return BatchRerankResponse(model=runtime.model_name, results=results, usage=Usage(total_tokens=tokens))

    @app.get("/health", tags=["service"], summary="200 once the model is loaded, 503 while loading or failed")
    def health() -> JSONResponse:
        state = runtime.health()
        return JSONResponse(state, status_code=200 if state["status"] == "ok" else 503)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        text = runtime.metrics.render(runtime.queue_depth, runtime.store.counts, runtime.ready)
        return Response(text, media_type=CONTENT_TYPE)

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        broken_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if broken_json is not None:
            where = broken_json.get("loc", ())
            position = f" at character {where[1]}" if len(where) > 1 else ""
            reason = (broken_json.get("ctx") or {}).get("error", broken_json.get("msg", ""))
            return JSONResponse({"detail": f"the request body is not valid JSON{position}: {reason}"}, 400)
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                   for e in errors]
        for d in details:
            if d["loc"] == ["body"] and d["type"] == "missing":
                d["msg"] = "the request has no body; send a JSON object (see /docs for its fields)"
        message = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in details[:10])
        return JSONResponse({"detail": details, "message": message}, 422)

    @app.exception_handler(NotReady)
    async def not_ready(request: Request, exc: NotReady) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": "5"})

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": "1"})

    @app.exception_handler(BatcherClosed)
    async def closing(request: Request, exc: BatcherClosed) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 503)


def _field(loc: list[object]) -> str:
    """('body', 'documents', 3) -> 'documents[3]'."""
    parts = [p for p in loc if p != "body"] or ["body"]
    out = str(parts[0])
    for p in parts[1:]:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out
