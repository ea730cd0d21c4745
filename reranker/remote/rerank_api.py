"""Any server speaking the Cohere / Jina rerank API (`POST /v1/rerank`): scores only.

Request `{"model", "query", "documents": [...], "top_n", "return_documents": false}`; answer `{"results":
[{"index", "relevance_score"}]}` (docs.cohere.com "Rerank API", jina.ai "Reranker API"). The API carries no
instruction, token counts or truncation flags: a non-default instruction is refused, tokens and truncated are
None, and the logit is log(p / (1 - p)) of the score, clipped.
"""

from __future__ import annotations

from reranker.core.backend import Capabilities
from reranker.core.ranking import Judgement, Query
from reranker.remote.connection import ServerConnection
from reranker.remote.remote_backend import RemoteBackend, in_input_order, logit_of


class RerankApiBackend(RemoteBackend):
    kind = "rerank server (Cohere / Jina API)"
    several_queries = False

    def __init__(self, connection: ServerConnection, model_name: str, path: str = "/v1/rerank",
                 model_named: bool = True, **kwargs: int) -> None:
        """model_named: whether `model_name` was given (else it is only the name sent, the server not saying)."""
        super().__init__(connection, model_name, **kwargs)
        self.path = path
        self.model_named = model_named

    def describe(self) -> dict[str, object]:
        described = super().describe()
        if not self.model_named:
            described["model"] = f"not told by the server (sent as {self.model_name})"
        return described

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self.kind, f"server {self.connection.shown}", self.connection.shown, instruction=False,
                            query_options=frozenset())

    def _judge(self, queries: list[Query]) -> list[list[Judgement]]:
        [q] = queries
        body = {"model": self.model_name, "query": q.query, "documents": list(q.documents),
                "top_n": len(q.documents), "return_documents": False}
        answer = self.connection.post(self.path, body)
        results = answer.get("results") if isinstance(answer, dict) else None
        scores = in_input_order(self.connection, self.path, results, len(q.documents),
                                lambda item: float(item["relevance_score"]))
        return [[Judgement(s, logit_of(s), None, None) for s in scores]]
