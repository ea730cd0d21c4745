"""Judgements remembered per (model, instruction, query, document), so a pair is scored at most once.

The workbench keeps one ScoreCache per browser session: re-running with one document added scores
only that document; two instructions over the same documents share forward passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from reranker.core.backend import RerankBackend
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import Judgement, Query

PairKey = tuple[str, str, str, str, int | None, bool, int | None, int | None]


@dataclass
class ScoreCache:
    max_pairs: int = 200_000
    """Oldest pairs are forgotten past this many."""
    judgements: dict[PairKey, Judgement] = field(default_factory=dict)
    backend_calls: int = 0
    """judge_many calls made on the backend; stays put when everything asked for was cached."""
    pairs_scored: int = 0

    def key(self, model: str, q: Query, document: str) -> PairKey:
        """What decides a pair's judgement: the model, the instruction, the texts, how the document is cut and whether
        it is read as passages."""
        return (model, resolve_instruction(q.instruction), q.query, document, q.document_tokens, q.keep_document_end,
                q.passage_tokens, q.max_passages)

    def missing(self, model: str, queries: Sequence[Query]) -> list[Query]:
        """The pairs not cached yet, each once, grouped as engine Queries."""
        seen: set[PairKey] = set()
        todo: list[Query] = []
        for q in queries:
            documents = []
            for d in q.documents:
                k = self.key(model, q, d)
                if k not in self.judgements and k not in seen:
                    seen.add(k)
                    documents.append(d)
            if documents:
                todo.append(replace(q, documents=documents, instruction=resolve_instruction(q.instruction)))
        return todo

    def judge_many(self, backend: RerankBackend, queries: Sequence[Query],
                   progress: Callable[[int, int], None] | None = None) -> list[list[Judgement]]:
        """Like backend.judge_many, but only the pairs not seen before reach the backend."""
        model = backend_key(backend)
        todo = self.missing(model, queries)
        if todo:
            self.backend_calls += 1
            for q, judged in zip(todo, backend.judge_many(todo, progress)):
                for d, j in zip(q.documents, judged):
                    self.judgements[self.key(model, q, d)] = j
                self.pairs_scored += len(judged)
        answer = [[self.judgements[self.key(model, q, d)] for d in q.documents]
                  for q in queries]
        self._forget_oldest()
        return answer

    def _forget_oldest(self) -> None:
        extra = len(self.judgements) - self.max_pairs
        for k in list(self.judgements)[:max(extra, 0)]:
            del self.judgements[k]


def backend_key(backend: RerankBackend) -> str:
    """What the cache files a backend's judgements under: its model and where it runs (the same model on a server
    may not count tokens, or cut documents, as this process does)."""
    return f"{backend.model_name} ({backend.capabilities.where})"
