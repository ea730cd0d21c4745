"""What every remote backend shares: queries cut into requests small enough for progress to keep moving, sent a
few at a time, a too-big request split in two; the options the server cannot honour refused up front."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

from reranker.core.backend import Capabilities, RerankBackend
from reranker.core.failures import TooLarge, UnsupportedOption
from reranker.core.passages import estimated_spans, judge_in_passages
from reranker.core.prompt import DEFAULT_INSTRUCTION, resolve_instruction
from reranker.core.ranking import Judgement, Progress, Query
from reranker.remote.connection import ServerConnection

_OPTIONS = {
    "document_tokens": "a per-document token cap (max_tokens_per_doc, truncate_prompt_tokens)",
    "keep_document_end": "keeping the end of a document that is cut",
    "refuse_truncation": "refusing to cut a prompt that is too long (truncate: false)",
}
T = TypeVar("T")
_LOGIT_CLIP = 1e-12
"""Scores are clipped to [this, 1 - this] before log(p / (1 - p)), so a saturated score gives ±27.6, not inf."""


@dataclass(frozen=True)
class _Piece:
    """Part of a judge_many call sent as one request: slices of one or more of its queries."""

    owners: list[tuple[int, int]]
    """Per query in `queries`: (its number in the call, the position of its first document there)."""
    queries: list[Query]


class RemoteBackend(RerankBackend):
    """Subclasses set `kind` and `several_queries`, say what they can do in `capabilities`, and implement `_judge`
    for one request."""

    kind = "reranking server"
    several_queries = True
    """A request may hold several queries (with one instruction and the same options)."""

    def __init__(self, connection: ServerConnection, model_name: str, pairs_per_request: int = 64,
                 concurrency: int = 2) -> None:
        self.connection = connection
        self.model_name = model_name
        self.pairs_per_request = pairs_per_request
        self.concurrency = concurrency

    @property
    def capabilities(self) -> Capabilities:
        """What the server's API carries; subclasses whose API carries less say so."""
        return Capabilities(self.kind, f"server {self.connection.shown}", self.connection.shown)

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        wants_passages = any(q.passage_tokens is not None or q.max_passages is not None for q in queries)
        if wants_passages and "passage_tokens" not in self.capabilities.query_options:
            # made here and sent as documents; with no tokenizer here, N tokens are estimated (core/passages.py)
            return judge_in_passages(queries, lambda plain: self.judge_many(plain, progress),
                                     lambda texts: [estimated_spans(t) for t in texts])
        for q in queries:
            self.check_options(q)
        results: list[list[Judgement | None]] = [[None] * len(q.documents) for q in queries]
        total, done = sum(len(q.documents) for q in queries), 0
        pool = ThreadPoolExecutor(max(1, self.concurrency), thread_name_prefix="reranker-remote")
        try:
            pieces = self._pieces(queries)
            for piece, verdicts in zip(pieces, pool.map(self._judge_splitting, [p.queries for p in pieces])):
                for (number, start), judged in zip(piece.owners, verdicts):
                    results[number][start:start + len(judged)] = judged
                    done += len(judged)
                if progress is not None:
                    progress(done, total)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]  # every slot is filled once each piece has answered

    def check_options(self, q: Query) -> None:
        """Refuse a query whose options or instruction this server cannot honour, naming them and the server."""
        can = self.capabilities
        asked = {"document_tokens": q.document_tokens is not None, "keep_document_end": q.keep_document_end,
                 "refuse_truncation": q.refuse_truncation}
        missing = [_OPTIONS[name] for name, on in asked.items() if on and name not in can.query_options]
        if missing:
            raise UnsupportedOption(f"the {self.kind} at {self.connection.shown} cannot honour {' or '.join(missing)}; "
                                    "send the request without it, or use a backend that can")
        if not can.instruction and resolve_instruction(q.instruction) != DEFAULT_INSTRUCTION:
            raise UnsupportedOption(f"the {self.kind} at {self.connection.shown} takes no instruction (its API has no "
                                    "field for one); use the default instruction, or a Qwen-Ranker sidecar or vLLM "
                                    "server")

    def _judge(self, queries: list[Query]) -> list[list[Judgement]]:
        raise NotImplementedError

    def _judge_splitting(self, queries: list[Query]) -> list[list[Judgement]]:
        """One request; one the server finds too big is sent again as two halves, down to single pairs."""
        try:
            return self._judge(queries)
        except TooLarge:
            if sum(len(q.documents) for q in queries) <= 1:
                raise
        if len(queries) > 1:
            halves = [queries[:len(queries) // 2], queries[len(queries) // 2:]]
        else:
            q = queries[0]
            middle = len(q.documents) // 2
            halves = [[replace(q, documents=q.documents[:middle])], [replace(q, documents=q.documents[middle:])]]
        first, second = (self._judge_splitting(h) for h in halves)
        if len(queries) > 1:
            return first + second
        return [first[0] + second[0]]

    def _pieces(self, queries: Sequence[Query]) -> list[_Piece]:
        """Consecutive queries of one instruction and the same options share a request, up to
        pairs_per_request pairs; a longer query is cut into several."""
        pieces: list[_Piece] = []
        owners: list[tuple[int, int]] = []
        members: list[Query] = []
        size = 0
        signature: tuple | None = None

        def close() -> None:
            nonlocal owners, members, size
            if members:
                pieces.append(_Piece(owners, members))
            owners, members, size = [], [], 0

        for number, q in enumerate(queries):
            q_signature = (resolve_instruction(q.instruction), q.document_tokens, q.keep_document_end,
                           q.refuse_truncation, q.passage_tokens, q.max_passages)
            if q_signature != signature or not self.several_queries:
                close()
                signature = q_signature
            documents = list(q.documents)
            for start in range(0, max(len(documents), 1), self.pairs_per_request):
                part = documents[start:start + self.pairs_per_request]
                if not part:
                    continue
                if size + len(part) > self.pairs_per_request:
                    close()
                owners.append((number, start))
                members.append(replace(q, documents=part))
                size += len(part)
                if not self.several_queries:
                    close()
        close()
        return pieces


def logit_of(score: float) -> float:
    """log(p / (1 - p)): the log-odds behind a score, for servers that report only P("yes")."""
    p = min(max(score, _LOGIT_CLIP), 1.0 - _LOGIT_CLIP)
    return math.log(p) - math.log1p(-p)


def in_input_order(connection: ServerConnection, path: str, items: object, count: int,
                   value: Callable[[dict], T]) -> list[T]:
    """`value` of each item of a server's answer placed at its `index`: `count` of them, or the answer is malformed
    (told as `connection.malformed`)."""
    try:
        slots: list[T | None] = [None] * count
        for item in items:  # type: ignore[attr-defined]  # a list of objects, or the answer is malformed
            slots[item["index"]] = value(item)
        if None in slots:
            raise ValueError(f"{slots.count(None)} of {count} documents have no score")
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise connection.malformed(path, f"{type(e).__name__}: {e}") from None
    return slots  # type: ignore[return-value]  # no slot is None past the check above
