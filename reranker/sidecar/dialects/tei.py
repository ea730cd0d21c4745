"""POST /rerank with `texts`: Hugging Face text-embeddings-inference's rerank.

Request: `query`, `texts`, `raw_scores` (answer the logit instead of the probability), `return_text`,
`truncate` (false, TEI's default: a pair over the model's limit is refused with 413; true: cut),
`truncation_direction` ("Right" cuts the document's end, "Left" its start). Answer: a bare JSON list of
`{index, score, text?}`, best first. Errors: `{"error", "error_type"}`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reranker.core.ranking import Query
from reranker.sidecar.dialects import InstructedBody
from reranker.sidecar.service import SidecarService


class TeiRerankRequest(InstructedBody):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{
        "query": "What is the capital of China?", "texts": ["The capital of China is Beijing.", "Gravity."]}]})

    query: str
    texts: list[str]
    raw_scores: bool = Field(False, description="Score as the logit, log P(yes) - log P(no), not P(yes).")
    return_text: bool = Field(False, description="Include each text in the results.")
    truncate: bool = Field(False, description="Cut a pair over the model's limit instead of refusing it (413).")
    truncation_direction: Literal["Right", "Left", "right", "left"] = Field(
        "Right", description="Which end of a text is cut when it must be: Right its end, Left its start.")


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None


async def rerank(service: SidecarService, body: TeiRerankRequest) -> list[TeiRank]:
    query = Query(body.query, body.texts, body.task_instruction(), refuse_truncation=not body.truncate,
                  keep_document_end=body.truncation_direction.lower() == "left")
    [ranked], _ = await service.rank([query])
    return [TeiRank(index=r.index, score=r.logit if body.raw_scores else r.score,
                    text=r.document if body.return_text else None)
            for r in ranked]


_ERROR_TYPES = {413: "Validation", 422: "Validation", 400: "Validation", 401: "Unauthorized", 429: "Overloaded",
                503: "Unhealthy"}


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None,
               overloaded: bool = False) -> dict[str, Any]:
    """TEI's `error` and `error_type` (`overloaded`: too many requests wait, which TEI names apart)."""
    return {"error": message, "error_type": "Overloaded" if overloaded else _ERROR_TYPES.get(status, "Backend")}
