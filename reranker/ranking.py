"""What goes into a reranker and what comes out, as plain data: every front end and backend speaks these."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Progress = Callable[[int, int], None]
"""Called with (pairs done, pairs in all) as scoring moves on."""


@dataclass(frozen=True)
class Query:
    """One query with the documents to judge against it, and how to fit documents that are too long."""

    query: str
    documents: Sequence[str]
    instruction: str | None = None
    document_tokens: int | None = None
    """Cut each document to this many tokens before its prompt is built (it is then marked truncated)."""
    keep_document_end: bool = False
    """When a document must be cut (to `document_tokens`, or to fit max_length), keep its end, not its start."""
    refuse_truncation: bool = False
    """Refuse (encoding.PromptTooLong) a prompt that does not fit max_length, instead of cutting it."""


@dataclass(frozen=True)
class Judgement:
    """The model's verdict on one (query, document) pair."""

    score: float
    """P("yes"), the model card's score."""
    logit: float
    """log P(yes) - log P(no): still tells documents apart when scores saturate near 0 or 1."""
    tokens: int | None
    """Prompt tokens the model read; None when the backend does not say (a vLLM or Cohere-style server)."""
    truncated: bool | None
    """The document (or query) was cut to fit max_length; None when the backend does not say."""


@dataclass(frozen=True)
class RankedDocument:
    index: int
    """Position of the document in the input, from 0."""
    document: str
    score: float
    logit: float
    rank: int
    """1 for the best."""
    tokens: int | None
    truncated: bool | None

    def record(self) -> dict[str, object]:
        """The one dict form of a ranked document, which every export and API answer starts from."""
        return {"rank": self.rank, "index": self.index, "score": self.score, "logit": self.logit,
                "tokens": self.tokens, "truncated": self.truncated, "document": self.document}


def total_tokens(judgements: Iterable[Judgement]) -> int | None:
    """Prompt tokens read for these pairs; None when the backend did not count some of them."""
    counts = [j.tokens for j in judgements]
    return None if None in counts else sum(counts)  # type: ignore[arg-type]


def rank_judgements(
    documents: Sequence[str], judgements: Sequence[Judgement], top_k: int | None = None
) -> list[RankedDocument]:
    """Best first; equal logits keep input order. Logits, not saturated scores, decide the order."""
    order = sorted(range(len(documents)), key=lambda i: (-judgements[i].logit, i))
    if top_k is not None:
        order = order[: max(top_k, 0)]
    return [
        RankedDocument(i, documents[i], judgements[i].score, judgements[i].logit, r, judgements[i].tokens,
                       judgements[i].truncated)
        for r, i in enumerate(order, start=1)
    ]
