"""POST /v1/rerank (and /rerank with `documents`): the shape Jina, Cohere v1 and vLLM rerank clients send.

Documents are strings, or objects: `{"text": ...}` (Jina, Cohere), or any fields with `rank_fields` naming
which to read (Cohere v1: joined as `field: value` lines in the order given). vLLM's `truncate_prompt_tokens`
cuts each document to that many tokens.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reranker.core.ranking import Query
from reranker.sidecar.dialects import (
    CHUNK_TOKENS,
    MODEL_FIELD,
    InstructedBody,
    as_object,
    document_text,
    document_token_cap,
    top_n_or_all,
)
from reranker.sidecar.schemas import Usage, usage_of
from reranker.sidecar.service import SidecarService


class RerankRequest(InstructedBody):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{
        "query": "What is the capital of China?",
        "documents": ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies."],
        "top_n": 1}]})

    query: str
    documents: list[str | dict[str, Any]] = Field(
        description="Strings, or objects with a `text` field (or the fields `rank_fields` names).")
    top_n: int | None = Field(None, ge=0, description="Return only the best top_n documents; 0 or absent: all.")
    return_documents: bool = Field(True, description="Include each document in the results.")
    rank_fields: list[str] | None = Field(None, description="Object documents: the fields to rank on, in order.")
    truncate_prompt_tokens: int | None = Field(None, ge=-1, description="Cut each document to this many tokens "
                                                                        "(-1: the model's limit).")
    max_chunks_per_doc: int | None = Field(None, ge=1, description="Cohere v1: read a long document as at most this "
                                           f"many chunks (passages of {CHUNK_TOKENS} tokens), the best chunk scoring "
                                           "for the document.")
    passage_tokens: int | None = Field(None, ge=1, description="The size of those passages, in tokens (default "
                                       f"{CHUNK_TOKENS} with max_chunks_per_doc).")
    model: str | None = Field(None, description=MODEL_FIELD)


class RerankResult(BaseModel):
    index: int = Field(description="Position of the document in the request.")
    relevance_score: float = Field(description='P("yes") from the model, 0 to 1.')
    document: dict[str, Any] | None = Field(None, description="The document as sent ({text} for a string).")
    passage_start: int | None = Field(None, description="Read as passages: where the best passage starts in the "
                                      "document's text (a character offset; Cohere clients ignore it).")
    passage_end: int | None = Field(None, description="Where the best passage ends.")


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult]
    usage: Usage | None = None


async def rerank(service: SidecarService, body: RerankRequest) -> RerankResponse:
    texts = [document_text(d, i, body.rank_fields) for i, d in enumerate(body.documents)]
    cap = document_token_cap(body.truncate_prompt_tokens)
    passages = body.passage_tokens or (CHUNK_TOKENS if body.max_chunks_per_doc is not None else None)
    query = Query(body.query, texts, body.task_instruction(), document_tokens=cap, passage_tokens=passages,
                  max_passages=body.max_chunks_per_doc)
    [ranked], tokens = await service.rank([query], top_n_or_all(body.top_n), model=body.model)
    return RerankResponse(
        id=f"rerank-{uuid.uuid4().hex}",
        model=service.answering(body.model),
        results=[RerankResult(index=r.index, relevance_score=r.score,
                              document=as_object(body.documents[r.index]) if body.return_documents else None,
                              passage_start=r.record()["passage_start"], passage_end=r.record()["passage_end"])
                 for r in ranked],
        usage=usage_of(tokens),
    )


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None,
               overloaded: bool = False) -> dict[str, Any]:
    """Jina's and Cohere v1's clients read `message`, vLLM's `detail` (FastAPI's list for a 422)."""
    return {"message": message, "detail": details if details is not None else message}
