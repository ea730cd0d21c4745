"""POST /v1/rerank (the Jina / Cohere / vLLM shape) and POST /api/rerank (several queries in one call)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from reranker.sidecar.schemas import (
    MultiQueryRerankRequest,
    MultiQueryRerankResponse,
    RerankRequest,
    RerankResponse,
)
from reranker.sidecar.service import SidecarService

router = APIRouter(tags=["rerank"])


def _service(request: Request) -> SidecarService:
    return request.app.state.service


@router.post("/v1/rerank", response_model=RerankResponse, response_model_exclude_none=True,
             summary="Rerank documents for one query (Jina / Cohere / vLLM shape)")
async def rerank(body: RerankRequest, request: Request) -> RerankResponse:
    return await _service(request).rerank(body)


@router.post("/api/rerank", response_model=MultiQueryRerankResponse,
             summary="Rank several queries' documents in one call")
async def rerank_queries(body: MultiQueryRerankRequest, request: Request) -> MultiQueryRerankResponse:
    return await _service(request).rerank_queries(body)
