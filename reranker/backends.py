"""Opening a backend from what a user typed: a model name or folder gives the engine in this process, an http(s)
address the server there. Apart from the interface (reranker.core.backend), so that imports run one way: this
knows every backend, and no backend knows it."""

from __future__ import annotations

from collections.abc import Callable

from reranker.core.addresses import is_server
from reranker.core.backend import RerankBackend
from reranker.core.environment import API_KEY, API_URL, SERVER, SERVER_KEY
from reranker.core.model_names import model_and_dtype

_HOSTED: dict[tuple[str, str | None], Callable[[], RerankBackend]] = {}


def server_from_env() -> tuple[str | None, str | None]:
    """(RERANKER_SERVER, RERANKER_SERVER_KEY); the workbench's old RERANKER_API_URL / RERANKER_API_KEY still work."""
    url = SERVER.read()
    if url:
        return url, SERVER_KEY.read()
    url = API_URL.read()
    if url:
        return url, SERVER_KEY.read() or API_KEY.read()
    return None, None


def open_backend(spec: str | None = None, key: str | None = None, *, device: str | None = None,
                 dtype: str | None = None, max_length: int = 8192, timeout: float = 120.0) -> RerankBackend:
    """A hub id or a local folder: the in-process engine (default $RERANKER_MODEL, else the 0.6B model).
    A model's scored name ("Qwen/Qwen3-Reranker-0.6B (int8)") opens it in that dtype.
    An http(s) URL: the server there (see reranker.remote.open_server); `key` is its bearer key.

    device, dtype and max_length apply to the in-process engine (device and dtype: None reads $RERANKER_DEVICE and
    $RERANKER_DTYPE, else auto); timeout to a server's answers. What this process
    already hosts under that spec (see `host`) is given instead of opening anything.
    """
    hosted = _HOSTED.get((spec or "", key))
    if hosted is not None:
        return hosted()
    if is_server(spec):
        from reranker.remote import open_server

        return open_server(spec, key, timeout=timeout)
    from reranker.engine.qwen3_reranker import Qwen3Reranker

    if spec is not None:
        spec, named_dtype = model_and_dtype(spec)
        dtype = dtype or named_dtype
    return Qwen3Reranker(model=spec, device=device, dtype=dtype, max_length=max_length)


def host(spec: str, key: str | None, opener: Callable[[], RerankBackend]) -> None:
    """From now on `open_backend(spec, key)` in this process gives `opener()`: the one-port server hosts its model
    (and the queue in front of it) this way, so the pages score on the copy the API scores on."""
    _HOSTED[(spec, key)] = opener
