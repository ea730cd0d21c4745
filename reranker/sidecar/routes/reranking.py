"""The rerank routes, every dialect on the one service and queue, made from the table of dialects
(dialects/registry): /v1/rerank, /v2/rerank, /score, /v1/score and our own /api/rerank; /rerank, which two dialects
share, is written out below."""

# No `from __future__ import annotations` here: FastAPI reads each endpoint's body type from its annotation, which
# `_endpoint` sets from the table at run time.
from typing import Any

from fastapi import APIRouter, Body, Request

from reranker.sidecar.dialects import rerank_v1, tei
from reranker.sidecar.dialects.registry import DIALECTS, RERANK_V1, TEI, Dialect
from reranker.sidecar.http_errors import ERROR_RESPONSES, set_dialect
from reranker.sidecar.routes import parse_body, service_of

router = APIRouter(tags=["rerank"], responses=ERROR_RESPONSES)


def _endpoint(dialect: Dialect) -> Any:
    async def endpoint(body: dialect.request, request: Request) -> Any:  # type: ignore[name-defined]
        return await dialect.handler(service_of(request), body)

    endpoint.__name__ = dialect.name
    return endpoint


for _dialect in DIALECTS:
    if _dialect.handler is not None:
        for _path in _dialect.paths:
            router.add_api_route(_path, _endpoint(_dialect), methods=["POST"], response_model=_dialect.response,
                                 response_model_exclude_none=True, summary=_dialect.summary)


@router.post("/rerank", summary="TEI's rerank when the body has `texts`; the /v1/rerank shape when `documents`",
             response_model=list[tei.TeiRank] | rerank_v1.RerankResponse, response_model_exclude_none=True)
async def rerank_bare(request: Request, body: dict = Body(openapi_examples={  # noqa: B008 - FastAPI's idiom
        "tei": {"value": {"query": "What is the capital of China?", "texts": ["Beijing.", "Gravity."]}},
        "jina / cohere": {"value": {"query": "What is the capital of China?", "documents": ["Beijing."]}}})
        ) -> list[tei.TeiRank] | rerank_v1.RerankResponse:
    """Tools configured with a bare base URL (Dify, RAGFlow) and TEI clients post here."""
    dialect = TEI if body.get("texts") is not None else RERANK_V1
    set_dialect(request, dialect)
    return await dialect.handler(service_of(request), parse_body(dialect.request, body))
