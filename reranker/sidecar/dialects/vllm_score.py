"""POST /score and /v1/score: vLLM's score API, as a vLLM server started with its Qwen3-Reranker template
answers it: the server builds the official prompt around each (query, document) pair.

Request: `queries` and `documents` (or the older `text_1` and `text_2`), each a string or a list: one query
against N documents, or N queries against N documents pairwise; `truncate_prompt_tokens` cuts each document to
that many tokens. Answer: `{id, object: "list", created, model, data: [{index, object: "score", score}], usage}`,
in input order.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reranker.core.failures import BadRequest
from reranker.core.ranking import in_pair_order, queries_of, total_tokens
from reranker.sidecar.dialects import MODEL_FIELD, InstructedBody, document_token_cap
from reranker.sidecar.service import SidecarService

Texts = str | list[str]


class ScoreRequest(InstructedBody):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{
        "model": "Qwen/Qwen3-Reranker-0.6B", "queries": "What is the capital of China?",
        "documents": ["The capital of China is Beijing.", "Gravity is a force."]}]})

    queries: Texts | None = Field(None, description="One query, or one per document.")
    documents: Texts | None = Field(None, description="The documents to score against the queries.")
    text_1: Texts | None = Field(None, description="Older name of `queries`.")
    text_2: Texts | None = Field(None, description="Older name of `documents`.")
    truncate_prompt_tokens: int | None = Field(None, ge=-1, description="Cut each document to this many tokens "
                                                                        "(-1: the model's limit).")
    model: str | None = Field(None, description=MODEL_FIELD)

    def pairs(self) -> tuple[list[str], list[str]]:
        """The queries and documents, as many queries as documents (a single query stands for every pair)."""
        queries = self.queries if self.queries is not None else self.text_1
        documents = self.documents if self.documents is not None else self.text_2
        if queries is None or documents is None:
            raise BadRequest("send the queries and the documents to score: 'queries' and 'documents' "
                               "(or 'text_1' and 'text_2'), each a string or a list of strings")
        queries = [queries] if isinstance(queries, str) else queries
        documents = [documents] if isinstance(documents, str) else documents
        if len(queries) == 1:
            queries = queries * len(documents)
        if len(queries) != len(documents):
            raise BadRequest(f"{len(queries)} queries and {len(documents)} documents: send one query, or one "
                               "query per document")
        return queries, documents


class ScoreData(BaseModel):
    index: int
    object: Literal["score"] = "score"
    score: float


class ScoreUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int
    completion_tokens: int = 0


class ScoreResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    created: int
    model: str
    data: list[ScoreData]
    usage: ScoreUsage | None = None


async def score(service: SidecarService, body: ScoreRequest) -> ScoreResponse:
    queries, documents = body.pairs()
    cap = document_token_cap(body.truncate_prompt_tokens)
    instruction = body.task_instruction()
    groups = [(replace(q, document_tokens=cap), positions)
              for q, positions in queries_of((q, d, instruction) for q, d in zip(queries, documents))]
    verdicts = await service.judge([q for q, _ in groups], several_queries=len(groups) > 1, model=body.model)
    judged = in_pair_order(groups, verdicts)
    tokens = total_tokens(judged)
    return ScoreResponse(id=f"score-{uuid.uuid4().hex}", created=int(time.time()),
                         model=service.answering(body.model),
                         data=[ScoreData(index=i, score=j.score) for i, j in enumerate(judged)],
                         usage=None if tokens is None else ScoreUsage(prompt_tokens=tokens, total_tokens=tokens))


_ERROR_TYPES = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 413: "BadRequestError",
                415: "BadRequestError", 422: "BadRequestError", 503: "ServiceUnavailableError"}


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None,
               overloaded: bool = False) -> dict[str, Any]:
    """vLLM's error object as vLLM 0.32 nests it ({"error": {"message", "type", "param", "code"}}) and as older vLLM
    sent it flat beside "object": "error", so clients of either read theirs."""
    error = {"message": message, "type": _ERROR_TYPES.get(status, "InternalServerError"), "param": None,
             "code": status}
    return {"object": "error", **error, "error": error}
