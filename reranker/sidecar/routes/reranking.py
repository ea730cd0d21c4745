"""The rerank routes, every dialect on the one service and queue: /v1/rerank, /v2/rerank, /rerank, /score,
/v1/score, and our own /api/rerank (several queries in one call)."""

from __future__ import annotations

from fastapi import APIRouter, Body, Request

from reranker.sidecar.dialects import cohere_v2, rerank_v1, tei, vllm_score
from reranker.sidecar.http_errors import ERROR_RESPONSES, Dialect, set_dialect
from reranker.sidecar.routes import parse_body, service_of
from reranker.sidecar.schemas import MultiQueryRerankResponse, RerankQueriesRequest

router = APIRouter(tags=["rerank"], responses=ERROR_RESPONSES)
SCORING_PATHS = frozenset({"/v1/rerank", "/v2/rerank", "/rerank", "/score", "/v1/score", "/api/rerank"})
"""Where a request waits for the model: cancelled when its client disconnects (middleware.CancelOnDisconnect)."""


@router.post("/v1/rerank", response_model=rerank_v1.RerankResponse, response_model_exclude_none=True,
             summary="Rerank documents for one query (Jina / Cohere v1 / vLLM shape)")
async def rerank(body: rerank_v1.RerankRequest, request: Request) -> rerank_v1.RerankResponse:
    return await rerank_v1.rerank(service_of(request), body)


@router.post("/v2/rerank", response_model=cohere_v2.CohereV2Response, response_model_exclude_none=True,
             summary="Rerank documents for one query (Cohere v2 shape: ClientV2, LangChain, LlamaIndex)")
async def rerank_v2(body: cohere_v2.CohereV2Request, request: Request) -> cohere_v2.CohereV2Response:
    return await cohere_v2.rerank(service_of(request), body)


@router.post("/rerank", summary="TEI's rerank when the body has `texts`; the /v1/rerank shape when `documents`",
             response_model=list[tei.TeiRank] | rerank_v1.RerankResponse, response_model_exclude_none=True)
async def rerank_bare(request: Request, body: dict = Body(openapi_examples={  # noqa: B008 - FastAPI's idiom
        "tei": {"value": {"query": "What is the capital of China?", "texts": ["Beijing.", "Gravity."]}},
        "jina / cohere": {"value": {"query": "What is the capital of China?", "documents": ["Beijing."]}}})
        ) -> list[tei.TeiRank] | rerank_v1.RerankResponse:
    """Tools configured with a bare base URL (Dify, RAGFlow) and TEI clients post here."""
    if body.get("texts") is not None:
        set_dialect(request, Dialect.TEI)
        return await tei.rerank(service_of(request), parse_body(tei.TeiRerankRequest, body))
    set_dialect(request, Dialect.RERANK_V1)
    return await rerank_v1.rerank(service_of(request), parse_body(rerank_v1.RerankRequest, body))


@router.post("/score", response_model=vllm_score.ScoreResponse, response_model_exclude_none=True,
             summary="Score pairs (vLLM's score API)")
@router.post("/v1/score", response_model=vllm_score.ScoreResponse, response_model_exclude_none=True,
             summary="Score pairs (vLLM's score API)")
async def score(body: vllm_score.ScoreRequest, request: Request) -> vllm_score.ScoreResponse:
    return await vllm_score.score(service_of(request), body)


@router.post("/api/rerank", response_model=MultiQueryRerankResponse, response_model_exclude_none=True,
             summary="Rank several queries' documents in one call")
async def rerank_queries(body: RerankQueriesRequest, request: Request) -> MultiQueryRerankResponse:
    return await service_of(request).rerank_queries(body)


