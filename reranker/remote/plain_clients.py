"""What a RAG client sends a rerank server: the query and the documents as plain text, in the server's dialect,
one request per query, so the server's own formatting (its template, its truncation, its batching) is what gets
judged. `python -m reranker verify` checks deployments through these (unlike the remote backends, which build the
model card's prompt themselves where the server lets them).

Dialects: `/v1/rerank` (Jina, Cohere v1, vLLM, our API), `/v2/rerank` (Cohere v2), `/rerank` with `texts` (TEI) or
with `documents` (Infinity, which has no /v1 unless started with --url-prefix /v1), `/score` (vLLM's score API). The
instruction is sent, as `instruction`, only when a query has one of its own; a server without such a field scores
the default (and verify then says the instruction is ignored).

A server holding a Qwen3-Reranker exported as a sequence classifier (`python -m reranker export`) adds no template:
its clients must send the model card's prompt in two halves (query part, document part; the export's README). With
`prompt_halves` these clients do so, which is what checks such a deployment as its correct clients call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from reranker.core.backend import Capabilities, RerankBackend
from reranker.core.failures import Unreachable
from reranker.core.prompt import DEFAULT_INSTRUCTION, classifier_pair, resolve_instruction
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
    ClientDialect("rerank", "/rerank", _rerank_body, _field("results"), "relevance_score"),
    ClientDialect("score", "/score", _score_body, _field("data"), "score"),
)}
"""Each dialect a client may speak, by name."""


class PlainTextClient(RerankBackend):
    """A rerank address called as RAG clients call it; `model_name` is the model it serves (what the report names)."""

    def __init__(self, connection: ServerConnection, dialect: ClientDialect, model_name: str, sent_model: str,
                 sends_prompt_halves: bool = False) -> None:
        self.connection = connection
        self.dialect = dialect
        self.model_name = model_name
        self.sent_model = sent_model
        """The `model` field sent (a vLLM server wants its served name)."""
        self.sends_prompt_halves = sends_prompt_halves
        self.last_prompt_tokens: int | None = None
        """The prompt tokens the server says it read for the last request (its `usage`; None: it does not say)."""

    @property
    def address(self) -> str:
        return self.connection.shown + self.dialect.path

    @property
    def capabilities(self) -> Capabilities:
        called = "sent the prompt's two halves" if self.sends_prompt_halves else "as clients call it"
        return Capabilities(f"{self.dialect.path} {called}", f"server {self.address}",
                            self.connection.shown, query_options=frozenset())

    def judge_many(self, queries: list[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        out = []
        for q in queries:
            q = as_prompt_halves(q) if self.sends_prompt_halves else q
            answer = self.connection.post(self.dialect.path, self.dialect.body(self.sent_model, q))
            self.last_prompt_tokens = _prompt_tokens(answer)
            scores = in_input_order(self.connection, self.dialect.path, self.dialect.results(answer),
                                    len(q.documents), lambda item: float(item[self.dialect.score_field]))
            out.append([Judgement(s, logit_of(s), None, None) for s in scores])
        return out


def _prompt_tokens(answer: Any) -> int | None:
    """`usage.prompt_tokens` (vLLM, Infinity, our API) or Cohere's `meta.billed_units.input_tokens`, else None."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens", usage.get("total_tokens")), int):
        return int(usage.get("prompt_tokens", usage.get("total_tokens")))
    billed = (answer.get("meta") or {}).get("billed_units") if isinstance(answer, dict) else None
    count = billed.get("input_tokens") if isinstance(billed, dict) else None
    return int(count) if isinstance(count, int) else None


def as_prompt_halves(q: Query) -> Query:
    """`q` as a client of a sequence-classifier export sends it: the query as the prompt's first half (instruction
    included), each document as the second."""
    query_part = classifier_pair(q.query, "", q.instruction)[0]
    return Query(query_part, [classifier_pair("", d)[1] for d in q.documents])


SUFFIXES = (("/v1/rerank", "v1_rerank"), ("/v2/rerank", "v2_rerank"), ("/v1/score", "score"), ("/score", "score"),
            ("/rerank", "tei"))
"""An address ending so is called in that dialect (a bare /rerank as TEI's, with `texts`, unless the server lists its
models as Infinity does: then with `documents`)."""


def plain_clients(url: str, key: str | None = None, timeout: float = 300.0, model: str | None = None,
                  send_prompt_halves: bool = False) -> tuple[list[PlainTextClient], str | None]:
    """The rerank addresses at `url` as clients call them, and the model the server says it serves (None: it does not
    say; `model` overrides). An address ending in a dialect's path (SUFFIXES) is that one; a base address is asked
    what it is: a Qwen-Ranker sidecar (GET /health) offers its four dialects, a vLLM server (GET /v1/models)
    /v1/rerank and /score, an Infinity server (GET /models) its /rerank, anything else /v1/rerank.
    send_prompt_halves: send the model card's prompt in two halves (see the module's docstring)."""
    url = url.strip().rstrip("/")

    def client(base: str, dialect: ClientDialect, served: str | None) -> PlainTextClient:
        connection = ServerConnection(base, key, timeout, kind="rerank server")
        return PlainTextClient(connection, dialect, served or "the server's model", served or "", send_prompt_halves)

    for suffix, name in SUFFIXES:
        if url.endswith(suffix):
            base = url.removesuffix(suffix)
            listed = _listing(ServerConnection(base, key, timeout, retries=0))
            if name == "tei" and _listed_by_infinity(listed):
                name = "rerank"
            served = model or _first_model(listed)
            return [client(base, replace(DIALECTS[name], path=suffix), served)], served
    probe = ServerConnection(url, key, timeout, retries=0)
    status, health = probe.probe("/health")
    if status == 200 and isinstance(health, dict) and health.get("server") == SERVER_NAME:
        served = model or str(health.get("model") or "") or None
        return [client(url, DIALECTS[name], served) for name in ("v1_rerank", "v2_rerank", "tei", "score")], served
    listed = listed_models(probe)
    if not listed and _listed_by_infinity(_listing(probe)):  # Infinity without --url-prefix /v1
        served = model or _first_model(_listing(probe))
        return [client(url, DIALECTS["rerank"], served)], served
    served = model or _first_model(listed)
    if listed_by_vllm(listed):
        return [client(url, DIALECTS[name], served) for name in ("v1_rerank", "score")], served
    return [client(url, DIALECTS["v1_rerank"], served)], served


def _listing(probe: ServerConnection) -> list[dict]:
    """The server's models: GET /v1/models (OpenAI-style servers), else GET /models (Infinity without a prefix)."""
    listed = listed_models(probe)
    if listed:
        return listed
    try:
        status, answer = probe.probe("/models")
    except Unreachable:
        return []
    data = answer.get("data") if status == 200 and isinstance(answer, dict) else None
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def _listed_by_infinity(listed: list[dict]) -> bool:
    return any(m.get("owned_by") == "infinity" for m in listed)


def _first_model(listed: list[dict]) -> str | None:
    """The first model of a server's listing (GET /v1/models), or None."""
    return next((str(m["id"]) for m in listed if m.get("id")), None)
