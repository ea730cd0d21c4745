"""Every rerank dialect the API speaks, in one table: where each is served, its request and answer, the service call
that answers it, and the shape of its errors. The routes (`routes/reranking`), the error answers (`http_errors`)
and the paths where a request waits for the model (`middleware.CancelOnDisconnect`) are all read from it, so a new
dialect is its module (bodies, handler, `error_body`) and one entry here (docs/ARCHITECTURE.md, "Adding a dialect").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from reranker.sidecar.dialects import cohere_v2, rerank_v1, tei, vllm_score
from reranker.sidecar.schemas import MultiQueryRerankResponse, RerankQueriesRequest
from reranker.sidecar.service import SidecarService

ErrorBody = Callable[[int, str, "list[dict[str, Any]] | None", bool], dict[str, Any]]
"""(status, message, a 422's field errors or None, overloaded) -> the error answer's JSON body."""


@dataclass(frozen=True)
class Dialect:
    name: str
    paths: tuple[str, ...]
    """Where its route is served; empty for a dialect reached only through a path it shares (TEI's /rerank)."""
    error_body: ErrorBody
    request: type[BaseModel] | None = None
    handler: Callable[[SidecarService, Any], Awaitable[Any]] | None = None
    """The service call that answers a request; None: its route is written by hand (routes/reranking)."""
    response: Any = None
    summary: str = ""


def own_error_body(status: int, message: str, details: list[dict[str, Any]] | None = None,
                   overloaded: bool = False) -> dict[str, Any]:
    """Our own /api/* and /health: FastAPI's {"detail": ...}, and "message" beside a 422's list of field errors."""
    return {"detail": details, "message": message} if details is not None else {"detail": message}


def shared_rerank_error_body(status: int, message: str, details: list[dict[str, Any]] | None = None,
                             overloaded: bool = False) -> dict[str, Any]:
    """/rerank before its body tells TEI (`texts`) from the /v1/rerank shape (`documents`): both dialects' fields,
    so either client reads its own."""
    return {**tei.error_body(status, message, details, overloaded),
            **rerank_v1.error_body(status, message, details, overloaded)}


OWN = Dialect("api", ("/api/rerank",), own_error_body, RerankQueriesRequest, SidecarService.rerank_queries,
              MultiQueryRerankResponse, "Rank several queries' documents in one call")
"""Our own API; also the error shape of every path no other dialect claims (/api/jobs, /health, ...)."""
RERANK_V1 = Dialect("rerank_v1", ("/v1/rerank",), rerank_v1.error_body, rerank_v1.RerankRequest, rerank_v1.rerank,
                    rerank_v1.RerankResponse, "Rerank documents for one query (Jina / Cohere v1 / vLLM shape)")
COHERE_V2 = Dialect("cohere", ("/v2/rerank",), cohere_v2.error_body, cohere_v2.CohereV2Request, cohere_v2.rerank,
                    cohere_v2.CohereV2Response,
                    "Rerank documents for one query (Cohere v2 shape: ClientV2, LangChain, LlamaIndex)")
VLLM_SCORE = Dialect("vllm", ("/score", "/v1/score"), vllm_score.error_body, vllm_score.ScoreRequest,
                     vllm_score.score, vllm_score.ScoreResponse, "Score pairs (vLLM's score API)")
TEI = Dialect("tei", (), tei.error_body, tei.TeiRerankRequest, tei.rerank)
"""Reached through /rerank, when the body has `texts`."""
SHARED_RERANK = Dialect("bare_rerank", ("/rerank",), shared_rerank_error_body)
"""/rerank: TEI's when the body has `texts`, else RERANK_V1's (Dify and RAGFlow post here with a bare base URL)."""

DIALECTS = (OWN, RERANK_V1, COHERE_V2, VLLM_SCORE, TEI, SHARED_RERANK)
_BY_PATH = {path: dialect for dialect in DIALECTS for path in dialect.paths}
SCORING_PATHS = frozenset(_BY_PATH)
"""Where a request waits for the model: cancelled when its client disconnects (middleware.CancelOnDisconnect)."""


def dialect_of_path(path: str) -> Dialect:
    """The dialect a path speaks, before its body is read."""
    return _BY_PATH.get(path, OWN)
