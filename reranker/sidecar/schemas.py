"""Request and response bodies; FastAPI turns them into the validation errors and the /docs page."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TextDocument(BaseModel):
    """A document given as an object, as Jina and Cohere clients send it; only `text` is read."""

    text: str


DocumentIn = str | TextDocument


def document_text(document: DocumentIn) -> str:
    return document if isinstance(document, str) else document.text


class Usage(BaseModel):
    total_tokens: int = Field(description="Prompt tokens the model read for this request.")


def usage_of(tokens: int | None) -> Usage | None:
    """The usage block, left out when the backend did not count tokens (a vLLM or Cohere-style server)."""
    return None if tokens is None else Usage(total_tokens=tokens)


class MultiQueryRerankRequest(BaseModel):
    """POST /api/rerank and JSON jobs: several queries, one list of documents each (the multi-query form)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "queries": ["What is the capital of China?", "什么是重力？"],
        "documents": [["The capital of China is Beijing.", "Paris is in France."],
                      ["重力是一种使两个物体相互吸引的力。", "北京是中国的首都。"]],
        "top_n": 2}]})

    queries: list[str]
    documents: list[list[DocumentIn]]
    instruction: str | None = Field(None, description="Task instruction for every query; blank means the default.")
    model: str | None = Field(None, description="One of the sidecar's extra models (RERANKER_EXTRA_MODELS) to score "
                                                "with; anything else is answered by its own model.")
    top_n: int | None = Field(None, ge=1, description="Keep only the best top_n documents of each query.")
    passage_tokens: int | None = Field(None, ge=1, description="Judge each document as passages of at most this many "
                                       "tokens, the best passage standing for it (its offsets come back).")
    max_passages: int | None = Field(None, ge=1, description="With passage_tokens: read at most this many passages "
                                     "of a document.")

    @model_validator(mode="after")
    def _one_list_per_query(self) -> MultiQueryRerankRequest:
        if len(self.queries) != len(self.documents):
            raise ValueError(f"queries and documents differ in length: {len(self.queries)} queries but "
                             f"{len(self.documents)} document lists; give one list of documents per query")
        return self

    def texts(self) -> list[list[str]]:
        return [[document_text(d) for d in docs] for docs in self.documents]


class RerankQueriesRequest(MultiQueryRerankRequest):
    """POST /api/rerank: the multi-query form, with how to fit documents that are too long."""

    document_tokens: int | None = Field(None, ge=1, description="Cut each document to this many tokens.")
    keep_document_end: bool = Field(False, description="When a document is cut, keep its end, not its start.")
    refuse_truncation: bool = Field(False, description="Answer 413 instead of cutting a prompt that does not fit "
                                                       "the model's limit.")


class RankedItem(BaseModel):
    index: int
    document: str
    score: float = Field(description='P("yes"), 0 to 1.')
    logit: float = Field(description="log P(yes) - log P(no); orders documents whose scores saturate.")
    rank: int
    tokens: int | None = Field(description="Prompt tokens read; null when the backend does not count them.")
    truncated: bool | None = Field(description="The document was cut; null when the backend does not say.")
    passage_start: int | None = Field(None, description="With passages: where the best passage starts in the "
                                      "document (a character offset); its score is the document's.")
    passage_end: int | None = Field(None, description="With passages: where the best passage ends.")


class MultiQueryRerankResponse(BaseModel):
    model: str
    results: list[list[RankedItem]] = Field(description="One ranked list per query, best first.")
    usage: Usage | None = Field(None, description="Left out when the backend does not count tokens.")


JobStatusName = Literal["queued", "running", "done", "failed", "cancelled"]


class JobCreated(BaseModel):
    id: str
    status: JobStatusName


class JobProgress(BaseModel):
    done: int = Field(description="Pairs scored.")
    total: int = Field(description="Pairs in the job.")
    fraction: float


class JobStatus(BaseModel):
    id: str
    status: JobStatusName
    kind: Literal["json", "csv"]
    progress: JobProgress
    eta_seconds: float | None = Field(description="Seconds left at the current pace; null when not known.")
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    filename: str | None = None
    columns: dict[str, str | None] | None = None


class JobItem(RankedItem):
    row: int | None = Field(None, description="CSV jobs: the row of the uploaded table (0 = first data row).")
    label: float | None = Field(None, description="CSV jobs: the label column's value, when one was mapped.")


class JobQueryResults(BaseModel):
    query: str
    instruction: str | None
    results: list[JobItem]


class JobResults(BaseModel):
    id: str
    status: JobStatusName
    queries: list[JobQueryResults] = Field(description="Each query with its documents, best first.")
