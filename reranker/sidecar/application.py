"""The sidecar's FastAPI app: the runtime and the service, the routes, the middleware, one error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import IO

from fastapi import FastAPI, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPBearer
from fastapi_offline import FastAPIOffline
from starlette.types import Scope

from reranker.core.backend import RerankBackend
from reranker.sidecar.dialects.registry import SCORING_PATHS
from reranker.sidecar.http_errors import install_error_handlers
from reranker.sidecar.middleware import (
    BearerAuthMiddleware,
    BodyLimitMiddleware,
    CancelOnDisconnect,
    MetricsMiddleware,
)
from reranker.sidecar.routes import jobs, reranking, status
from reranker.sidecar.runtime import Runtime
from reranker.sidecar.service import SidecarService
from reranker.sidecar.settings import Settings

DESCRIPTION = """Qwen3-Reranker over HTTP, beside the Qwen-Ranker Pro workbench.

* `POST /v1/rerank` speaks the Jina / Cohere v1 / vLLM rerank shape, `POST /v2/rerank` Cohere's v2.
* `POST /rerank` speaks text-embeddings-inference's shape (`texts`) or the /v1/rerank one (`documents`).
* `POST /score` and `POST /v1/score` speak vLLM's score API.
* `POST /api/rerank` ranks several queries' documents in one call.
* `/api/jobs` takes work too big for one request (JSON or a CSV upload), persisted in SQLite.

With `RERANKER_API_KEY` set, every endpoint but `/health` and this page needs `Authorization: Bearer <key>`
(**Authorize** below sends it).

With `RERANKER_SERVER` set the sidecar is a gateway: this API, its queue and its jobs in front of that server.
"""


def create_app(settings: Settings | None = None, backend_factory: Callable[[], RerankBackend] | None = None,
               data_lock: IO[str] | None = None) -> FastAPI:
    """The app over a runtime that starts opening its backend when the app starts (backend_factory: how to open
    it; data_lock: the data folder's lock, when the caller took it already)."""
    settings = settings or Settings.from_env()
    runtime = Runtime(settings, backend_factory, data_lock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        yield
        runtime.stop()

    # FastAPIOffline serves the /docs page's scripts itself: it works where no CDN can be reached.
    app = FastAPIOffline(title="Qwen-Ranker Pro sidecar", description=DESCRIPTION, version="1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.service = SidecarService(runtime)
    # With a key, the schema says so: /docs then has an Authorize button (the middleware checks the key).
    bearer = [Security(HTTPBearer(auto_error=False, description="RERANKER_API_KEY"))] if settings.api_key else []
    for routes in (reranking, jobs, status):
        app.include_router(routes.router, dependencies=bearer)
    app.include_router(status.open_router)
    install_error_handlers(app)

    def body_limit(scope: Scope) -> tuple[int, str]:
        if scope["path"].rstrip("/") == "/api/jobs" and scope["method"] == "POST":
            return settings.max_job_bytes, "RERANKER_MAX_JOB_BYTES"
        return settings.max_body_bytes, "RERANKER_MAX_BODY_BYTES"

    app.add_middleware(CancelOnDisconnect, paths=SCORING_PATHS)
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    if settings.api_key:
        app.add_middleware(BearerAuthMiddleware, key=settings.api_key)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    return app
