"""What a RAG client sends a rerank server: the query and the documents as plain text, in the server's dialect,
one request per query, so the server's own formatting (its template, its truncation, its batching) is what gets
judged. `python -m reranker verify` checks deployments through these (unlike the remote backends, which build the
model card's prompt themselves where the server lets them).

Dialects: `/v1/rerank` (Jina, Cohere v1, vLLM, our API), `/v2/rerank` (Cohere v2), `/rerank` with `texts` (TEI),
`/score` (vLLM's score API). The instruction is sent, as `instruction`, only when a query has one of its own; a
server without such a field scores the default (and verify then says the instruction is ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from reranker.core.backend import Capabilities, RerankBackend
from reranker.core.prompt import DEFAULT_INSTRUCTION, resolve_instruction
from reranker.core.ranking import Judgement, Progress, Query
from reranker.remote.connection import ServerConnection
from reranker.remote.remote_backend import in_input_order, logit_of
from reranker.remote.sidecar import SERVER_NAME
from reranker.remote.vllm_server import listed_by_vllm, listed_models


@dataclass(frozen=True)
class ClientDialect:
    name: str
    path: str
    body: Callable[[str, Query], dict[str, Any]]
    """(model, query) -> the request body."""
    results: Callable[[Any], Any]
    """The answer -> its list of results, each with an `index` (None when the answer has none)."""
    score_field: str
    """The field of a result that holds the document's score."""


def _rerank_body(model: str, q: Query) -> dict[str, Any]:
    return {"model": model, "query": q.query, "documents": list(q.documents), "top_n": len(q.documents),
            "return_documents": False, **_instruction(q)}


def _field(name: str) -> Callable[[Any], Any]:
    return lambda answer: answer.get(name) if isinstance(answer, dict) else None


def _tei_body(model: str, q: Query) -> dict[str, Any]:
    return {"query": q.query, "texts": list(q.documents), "raw_scores": False, "truncate": True, **_instruction(q)}


def _score_body(model: str, q: Query) -> dict[str, Any]:
    return {"model": model, "text_1": q.query, "text_2": list(q.documents), **_instruction(q)}


def _instruction(q: Query) -> dict[str, str]:
    instruction = resolve_instruction(q.instruction)
    return {} if instruction == DEFAULT_INSTRUCTION else {"instruction": instruction}


DIALECTS = {d.name: d for d in (
    ClientDialect("v1_rerank", "/v1/rerank", _rerank_body, _field("results"), "relevance_score"),
    ClientDialect("v2_rerank", "/v2/rerank", _rerank_body, _field("results"), "relevance_score"),
    ClientDialect("tei", "/rerank", _tei_body, lambda answer: answer, "score"),  # TEI answers a bare list
    ClientDialect("score", "/score", _score_body, _field("data"), "score"),
)}
"""Each dialect a client may speak, by name."""


class PlainTextClient(RerankBackend):
    """A rerank address called as RAG clients call it; `model_name` is the model it serves (what the report names)."""

    def __init__(self, connection: ServerConnection, dialect: ClientDialect, model_name: str, sent_model: str) -> None:
        self.connection = connection
        self.dialect = dialect
        self.model_name = model_name
        self.sent_model = sent_model
        """The `model` field sent (a vLLM server wants its served name)."""

    @property
    def address(self) -> str:
        return self.connection.shown + self.dialect.path

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(f"{self.dialect.path} as clients call it", f"server {self.address}",
                            self.connection.shown, query_options=frozenset())

    def judge_many(self, queries: list[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        out = []
        for q in queries:
            answer = self.connection.post(self.dialect.path, self.dialect.body(self.sent_model, q))
            scores = in_input_order(self.connection, self.dialect.path, self.dialect.results(answer),
                                    len(q.documents), lambda item: float(item[self.dialect.score_field]))
            out.append([Judgement(s, logit_of(s), None, None) for s in scores])
        return out


SUFFIXES = (("/v1/rerank", "v1_rerank"), ("/v2/rerank", "v2_rerank"), ("/v1/score", "score"), ("/score", "score"),
            ("/rerank", "tei"))
"""An address ending so is called in that dialect (a bare /rerank as TEI's, with `texts`)."""


def plain_clients(url: str, key: str | None = None, timeout: float = 300.0, model: str | None = None
                  ) -> tuple[list[PlainTextClient], str | None]:
    """The rerank addresses at `url` as clients call them, and the model the server says it serves (None: it does not
    say; `model` overrides). An address ending in a dialect's path (SUFFIXES) is that one; a base address is asked
    what it is: a Qwen-Ranker sidecar (GET /health) offers all four dialects, a vLLM server (GET /v1/models)
    /v1/rerank and /score, anything else /v1/rerank."""
    url = url.strip().rstrip("/")
    for suffix, name in SUFFIXES:
        if url.endswith(suffix):
            base = url.removesuffix(suffix)
            served = model or _first_model(listed_models(ServerConnection(base, key, timeout, retries=0)))
            return [_client(base, key, timeout, replace(DIALECTS[name], path=suffix), served)], served
    probe = ServerConnection(url, key, timeout, retries=0)
    status, health = probe.probe("/health")
    if status == 200 and isinstance(health, dict) and health.get("server") == SERVER_NAME:
        served = model or str(health.get("model") or "") or None
        return [_client(url, key, timeout, d, served) for d in DIALECTS.values()], served
    listed = listed_models(probe)
    served = model or _first_model(listed)
    if listed_by_vllm(listed):
        return [_client(url, key, timeout, DIALECTS[name], served) for name in ("v1_rerank", "score")], served
    return [_client(url, key, timeout, DIALECTS["v1_rerank"], served)], served


def _client(base: str, key: str | None, timeout: float, dialect: ClientDialect, served: str | None) -> PlainTextClient:
    connection = ServerConnection(base, key, timeout, kind="rerank server")
    return PlainTextClient(connection, dialect, served or "the server's model", served or "")


def _first_model(listed: list[dict]) -> str | None:
    """The first model of a server's listing (GET /v1/models), or None."""
    return next((str(m["id"]) for m in listed if m.get("id")), None)
