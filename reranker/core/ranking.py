"""What goes into a reranker and what comes out, as plain data that every front end and backend speaks; ranking
judged documents, and grouping loose pairs into queries, in one place each."""

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
    """Refuse (PromptTooLong) a prompt that does not fit max_length, instead of cutting it."""
    passage_tokens: int | None = None
    """Judge each document as passages of at most this many of its tokens, the best passage standing for it
    (core/passages.py); None: the document whole, as one window."""
    max_passages: int | None = None
    """With passage_tokens: read at most this many passages of a document (the rest is not read: truncated)."""


def character_cost(query: Query, documents: Iterable[str] | None = None) -> int:
    """What judging a query's pairs costs, in characters: each document's, plus the query's and instruction's that
    its prompt repeats. A cheap stand-in for prompt tokens, which the sidecar's queue budgets a backend call by.

    documents: some of the query's documents (default: all of them)."""
    repeated = len(query.query) + len(query.instruction or "")
    return sum(len(d) + repeated for d in (query.documents if documents is None else documents))


@dataclass(frozen=True)
class Passage:
    """A part of a document judged on its own: its text is `document[start:end]`."""

    start: int
    """Character offset in the document."""
    end: int
    score: float
    logit: float


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
    passages: tuple[Passage, ...] | None = None
    """When the query asked for passages: each one judged, in document order; the score and logit above are the best
    passage's, and `tokens` the prompt tokens read for all of them."""

    def best_passage(self) -> Passage | None:
        return best_of(self.passages)


def best_of(passages: Sequence[Passage] | None) -> Passage | None:
    """The passage with the highest logit (the first of equals); None for none."""
    return max(passages, key=lambda p: p.logit, default=None) if passages else None


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
    passages: tuple[Passage, ...] | None = None

    def best_passage(self) -> Passage | None:
        return best_of(self.passages)

    def record(self) -> dict[str, object]:
        """The one dict form of a ranked document, which every export and API answer starts from; with passages,
        the best one's offsets and text (`passage_start`, `passage_end`, `passage`)."""
        best = self.best_passage()
        return {"rank": self.rank, "index": self.index, "score": self.score, "logit": self.logit,
                "tokens": self.tokens, "truncated": self.truncated, "document": self.document,
                "passage_start": best.start if best else None, "passage_end": best.end if best else None,
                "passage": self.document[best.start:best.end] if best else None}


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
                       judgements[i].truncated, judgements[i].passages)
        for r, i in enumerate(order, start=1)
    ]


def rank_each(queries: Sequence[Query], verdicts: Sequence[Sequence[Judgement]],
              top_k: int | None = None) -> list[list[RankedDocument]]:
    """Each query's judged documents ranked (rank_judgements), cut to top_k."""
    return [rank_judgements(q.documents, judged, top_k) for q, judged in zip(queries, verdicts, strict=True)]


def queries_of(pairs: Iterable[tuple[str, str, str | None]]) -> list[tuple[Query, list[int]]]:
    """Loose (query, document, instruction) pairs as one Query per (query, instruction), in first-seen order, each
    with the positions of its pairs among `pairs`: the form a backend judges in shared forward passes."""
    groups: dict[tuple[str, str | None], tuple[list[str], list[int]]] = {}
    for position, (query, document, instruction) in enumerate(pairs):
        documents, positions = groups.setdefault((query, instruction), ([], []))
        documents.append(document)
        positions.append(position)
    return [(Query(query, documents, instruction), positions)
            for (query, instruction), (documents, positions) in groups.items()]


def in_pair_order(groups: Sequence[tuple[Query, list[int]]], verdicts: Sequence[Sequence[Judgement]]
                  ) -> list[Judgement]:
    """The judgements of `queries_of`'s groups put back in the order of the pairs they came from."""
    out: list[Judgement | None] = [None] * sum(len(positions) for _, positions in groups)
    for (_, positions), judged in zip(groups, verdicts, strict=True):
        for position, judgement in zip(positions, judged, strict=True):
            out[position] = judgement
    return out  # type: ignore[return-value]  # every position belongs to one group
