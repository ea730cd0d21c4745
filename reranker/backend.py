"""Where the model runs, behind one small interface: in this process, or on a reranking server.

Every front end (the workbench, the sidecar's queue and jobs, the CLI, the batch command) is typed against
`RerankBackend` and gets one from `open_backend`, so "which machine does the arithmetic" is a setting, not a
code path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from reranker.ranking import Judgement, Progress, Query


@runtime_checkable
class RerankBackend(Protocol):
    """Judges (query, document) pairs. The in-process `Qwen3Reranker` is one; `reranker.remote` holds the others."""

    model_name: str

    def describe(self) -> dict[str, object]:
        """What a status line shows: at least `model` and `where` ("in this process" or "server <url>")."""
        ...

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        """Each query's documents judged, in input order. Raises UnsupportedOption for a query option this
        backend cannot honour, and BackendError when a server fails."""
        ...


class BackendError(RuntimeError):
    """A remote server could not score: the message names the server, what went wrong and the fix."""


class RequestTooBig(BackendError):
    """The server answered 413: the request holds more than it takes; a smaller one may pass."""


class RequestRefused(BackendError):
    """The server refused the request's content (a 400 or 422: a text over its limit, say)."""


class ServerBusy(BackendError):
    """The server answered 503 still after the retries: it is loading, or too busy."""


class UnsupportedOption(ValueError):
    """A query asks for something this backend cannot do (a per-request truncation on a vLLM server, say)."""


def server_from_env() -> tuple[str | None, str | None]:
    """(RERANKER_SERVER, RERANKER_SERVER_KEY); the workbench's old RERANKER_API_URL / RERANKER_API_KEY still work."""
    url = os.environ.get("RERANKER_SERVER", "").strip()
    if url:
        return url, os.environ.get("RERANKER_SERVER_KEY") or None
    url = os.environ.get("RERANKER_API_URL", "").strip()
    if url:
        return url, os.environ.get("RERANKER_SERVER_KEY") or os.environ.get("RERANKER_API_KEY") or None
    return None, None


def is_server(spec: str | None) -> bool:
    """An http:// or https:// address (anything else is a model: a hub id or a folder)."""
    return bool(spec) and spec.strip().lower().startswith(("http://", "https://"))


def shown_address(url: str) -> str:
    """The address without any user:password part, for status lines, /health and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def open_backend(spec: str | None = None, key: str | None = None, *, device: str | None = "auto",
                 dtype: str | None = "auto", max_length: int = 8192, timeout: float = 120.0) -> RerankBackend:
    """A hub id or a local folder: the in-process engine (default $RERANKER_MODEL, else the 0.6B model).
    An http(s) URL: the server there (see reranker.remote.open_server); `key` is its bearer key.

    device, dtype and max_length apply to the in-process engine; timeout to a server's answers.
    """
    if is_server(spec):
        from reranker.remote import open_server

        return open_server(spec, key, timeout=timeout)
    from reranker.engine import Qwen3Reranker

    return Qwen3Reranker(model=spec, device=device, dtype=dtype, max_length=max_length)
