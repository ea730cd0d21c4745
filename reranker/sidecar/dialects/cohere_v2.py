"""POST /v2/rerank: Cohere's v2 rerank, which the `cohere` SDK's ClientV2 and so LangChain's and LlamaIndex's
CohereRerank send; vLLM clients post their rerank body here too.

Request: `model`, `query`, `documents` (strings), `top_n`, `max_tokens_per_doc` (each document cut to that
many tokens). Answer: `id`, `results` [{index, relevance_score}] best first, `meta`; plus `model` and `usage`
for vLLM clients, and each document when the request asks `return_documents` (not Cohere's, vLLM's).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reranker.core.ranking import Query
from reranker.sidecar.dialects import (
    MODEL_FIELD,
    InstructedBody,
    as_object,
    document_text,
    document_token_cap,
    top_n_or_all,
)
from reranker.sidecar.schemas import Usage, usage_of
from reranker.sidecar.service import SidecarService


class CohereV2Request(InstructedBody):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{
        "model": "Qwen/Qwen3-Reranker-0.6B", "query": "What is the capital of China?",
        "documents": ["The capital of China is Beijing.", "Gravity is a force."], "top_n": 1}]})

    query: str
    documents: list[str | dict[str, Any]] = Field(description="Strings (objects with `text` are read too).")
    top_n: int | None = Field(None, ge=0, description="Return only the best top_n documents; 0 or absent: all.")
    max_tokens_per_doc: int | None = Field(None, ge=1, description="Cut each document to this many tokens.")
    truncate_prompt_tokens: int | None = Field(None, ge=-1, description="vLLM's name for max_tokens_per_doc "
                                                                        "(-1: the model's limit).")
    return_documents: bool = Field(False, description="Include each document in the results (vLLM's option).")
    model: str | None = Field(None, description=MODEL_FIELD)


class CohereV2Result(BaseModel):
    index: int
    relevance_score: float
    document: dict[str, Any] | None = None


class ApiVersion(BaseModel):
    version: str = "2"


class InputTokens(BaseModel):
    input_tokens: float


class CohereV2Meta(BaseModel):
    api_version: ApiVersion = ApiVersion()
    tokens: InputTokens | None = None


class CohereV2Response(BaseModel):
    id: str
    results: list[CohereV2Result]
    meta: CohereV2Meta
    model: str
    usage: Usage | None = None


async def rerank(service: SidecarService, body: CohereV2Request) -> CohereV2Response:
    texts = [document_text(d, i) for i, d in enumerate(body.documents)]
    cap = body.max_tokens_per_doc or document_token_cap(body.truncate_prompt_tokens)
    query = Query(body.query, texts, body.task_instruction(), document_tokens=cap)
    [ranked], tokens = await service.rank([query], top_n_or_all(body.top_n), model=body.model)
    return CohereV2Response(
        id=str(uuid.uuid4()),
        results=[CohereV2Result(index=r.index, relevance_score=r.score,
                                document=as_object(body.documents[r.index]) if body.return_documents else None)
                 for r in ranked],
        meta=CohereV2Meta(tokens=None if tokens is None else InputTokens(input_tokens=tokens)),
        model=service.answering(body.model),
        usage=usage_of(tokens),
    )


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None,
               overloaded: bool = False) -> dict[str, Any]:
    """The cohere SDK reads `message`."""
    return {"message": message}
