"""Remote backends: the model runs on a server, this process sends it requests.

`open_server(url)` tells from the address (or by asking the server) which kind it is:
- an address ending in `/score` (`.../v1/score`): a vLLM server;
- an address ending in `/rerank` (`.../v1/rerank`, `.../v2/rerank`): a vLLM server when the server says it is one
  (its /v1/models), scored through its /score, which carries the model card's prompt; else a Cohere / Jina
  compatible API there;
- otherwise the server is asked: a Qwen-Ranker sidecar says so on GET /health; a vLLM server lists its model on
  GET /v1/models; anything else is taken for a Cohere / Jina compatible server at `<url>/v1/rerank`.
"""

from __future__ import annotations

from reranker.core.backend import RerankBackend
from reranker.core.environment import SERVER_MODEL
from reranker.core.failures import ServerFailed
from reranker.core.model_names import DEFAULT_MODEL
from reranker.remote.connection import ServerConnection
from reranker.remote.rerank_api import RerankApiBackend
from reranker.remote.sidecar import SERVER_NAME, SidecarBackend
from reranker.remote.vllm_server import VllmScoreBackend, is_vllm, open_vllm

__all__ = ["SidecarBackend", "RerankApiBackend", "VllmScoreBackend", "open_server"]


PROBE = ("Is this server ready to score?", "A one-line probe from Qwen-Ranker Pro.")
"""The pair scored when a server is opened."""


def open_server(url: str, key: str | None = None, timeout: float = 120.0, model: str | None = None) -> RerankBackend:
    """The backend for the server at `url`, once it has scored a probe pair (PROBE): a server that answers but cannot
    score (a wrong path, a missing or wrong key, a model it does not serve) is told now, not at the first rerank.
    model: the name sent to servers that want one ($RERANKER_SERVER_MODEL; a vLLM server's own is asked for, a
    Cohere-style server gets the 0.6B model's id)."""
    backend = _backend_for(url, key, timeout, model)
    backend.judge(PROBE[0], [PROBE[1]])
    return backend


def _backend_for(url: str, key: str | None, timeout: float, model: str | None) -> RerankBackend:
    url = url.strip().rstrip("/")
    model = model or SERVER_MODEL.read()
    for suffix in ("/v1/score", "/score"):
        if url.endswith(suffix):
            return open_vllm(url.removesuffix(suffix), key, timeout, model)
    if url.endswith("/rerank"):
        base = url.removesuffix("/rerank").removesuffix("/v1").removesuffix("/v2")
        if is_vllm(ServerConnection(base, key, timeout, retries=0)):
            return open_vllm(base, key, timeout, model)
        return RerankApiBackend(ServerConnection(url, key, timeout, kind=RerankApiBackend.kind), model or DEFAULT_MODEL,
                                path="", model_named=bool(model))
    probe = ServerConnection(url, key, timeout, retries=0)
    _, health = probe.probe("/health")  # a sidecar says so while loading (503) too
    if isinstance(health, dict) and health.get("server") == SERVER_NAME:
        if health.get("status") == "failed":
            raise ServerFailed(f"The Qwen-Ranker sidecar at {probe.shown} could not load its model: "
                               f"{health.get('error')}")
        connection = ServerConnection(url, key, timeout, kind=SidecarBackend.kind)
        connection.get("/api/jobs?limit=1")  # a wrong key is told now, not at the first rerank
        return SidecarBackend(connection, str(health.get("model") or model or DEFAULT_MODEL))
    if is_vllm(probe):
        return open_vllm(url, key, timeout, model)
    return RerankApiBackend(ServerConnection(url, key, timeout, kind=RerankApiBackend.kind), model or DEFAULT_MODEL,
                            model_named=bool(model))
