"""Another Qwen-Ranker sidecar as the backend, through its multi-query `/api/rerank`.

That endpoint reports logits, token counts and truncation and takes the instruction and every query option,
so the scores are exactly the in-process engine's on the same model.
"""

from __future__ import annotations

from typing import Any

from reranker.ranking import Judgement, Query
from reranker.remote.remote_backend import RemoteBackend

SERVER_NAME = "qwen-ranker-pro"
"""What a sidecar's GET /health says in its `server` field, so a client can tell it from other servers."""


class RankerServerBackend(RemoteBackend):
    kind = "Qwen-Ranker sidecar"
    supports = frozenset({"document_tokens", "keep_document_end", "refuse_truncation"})

    def _judge(self, queries: list[Query]) -> list[list[Judgement]]:
        first = queries[0]
        body: dict[str, Any] = {
            "queries": [q.query for q in queries], "documents": [list(q.documents) for q in queries],
            "instruction": first.instruction, "document_tokens": first.document_tokens,
            "keep_document_end": first.keep_document_end, "refuse_truncation": first.refuse_truncation,
            "model": self.model_name}
        answer = self.connection.post("/api/rerank", body)
        ranked_lists = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(ranked_lists, list) or len(ranked_lists) != len(queries):
            raise self.connection.malformed("/api/rerank", f"not one ranked list for each of {len(queries)} queries")
        return [self.in_input_order("/api/rerank", ranked, len(q.documents), _judgement)
                for q, ranked in zip(queries, ranked_lists)]


def _judgement(item: dict) -> Judgement:
    return Judgement(float(item["score"]), float(item["logit"]), item.get("tokens"), item.get("truncated"))
