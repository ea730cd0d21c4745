"""Opening a backend from what a user typed: a model name or folder gives the engine in this process, an http(s)
address the server there. Apart from the interface (reranker.core.backend), so that imports run one way: this
knows every backend, and no backend knows it."""

from __future__ import annotations

from collections.abc import Callable

from reranker.core.addresses import is_server
from reranker.core.backend import RerankBackend
from reranker.core.environment import API_KEY, API_URL, SERVER, SERVER_KEY
from reranker.core.failures import BadRequest
from reranker.core.model_names import model_and_dtype, resolve_model
from reranker.core.ranking import Query

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
    """A hub id or a local folder: the in-process engine (default $RERANKER_MODEL, else the 0.6B model); a folder or
    hub id of a sequence classifier (bge-reranker, MiniLM, a Qwen3-Reranker exported to seq-cls), told from its
    config files without its weights: the cross-encoder backend in this process (engine/cross_encoder.py); an
    embedding model: BadRequest.
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
    if spec is not None:
        spec, named_dtype = model_and_dtype(spec)
        dtype = dtype or named_dtype
    from reranker.engine.cross_encoder import CrossEncoderReranker, is_sequence_classifier, refuse_non_reranker

    if is_sequence_classifier(resolve_model(spec)):
        return CrossEncoderReranker(resolve_model(spec), device=device, dtype=dtype, max_length=max_length)
    refuse_non_reranker(resolve_model(spec))
    from reranker.engine.qwen3_reranker import Qwen3Reranker

    return Qwen3Reranker(model=spec, device=device, dtype=dtype, max_length=max_length)


def host(spec: str, key: str | None, opener: Callable[[], RerankBackend]) -> None:
    """From now on `open_backend(spec, key)` in this process gives `opener()`: the one-port server hosts its model
    (and the queue in front of it) this way, so the pages score on the copy the API scores on."""
    _HOSTED[(spec, key)] = opener


def hosted_specs() -> list[tuple[str, str | None]]:
    """What this process hosts (see `host`): the one-port server's model, or the server it is a gateway to."""
    return list(_HOSTED)


READY_PROBE = Query("Is this server ready to score?", ["A one-line probe from Qwen-Ranker Pro."])


def open_targets(target: str, key: str | None = None, through_backend: bool = False, max_length: int = 8192,
                 timeout: float = 300.0, send_prompt_halves: bool = False) -> tuple[list[RerankBackend], str | None]:
    """What `verify` checks at `target` (docs/VERIFY.md), each having scored READY_PROBE (an unreachable server, a
    wrong key or path is told now), and the model the target says it serves (None: it does not say). An address:
    each of its rerank addresses called as clients call it (remote/plain_clients), or with `through_backend` this
    project's own backend for it, or with `send_prompt_halves` clients that send the model card's prompt in two
    halves (a sequence-classifier export's clients); a model name or folder: opened here."""
    if not is_server(target):
        opened, served = [open_backend(target, max_length=max_length)], model_and_dtype(target)[0]
    elif through_backend:
        from reranker.remote import open_server

        backend = open_server(target, key, timeout)
        opened, served = [backend], backend.model_name
    else:
        from reranker.remote.plain_clients import plain_clients

        opened, served = plain_clients(target, key, timeout, send_prompt_halves=send_prompt_halves)
    for backend in opened:
        backend.judge_many([READY_PROBE])
    return opened, served


def open_reference(name: str | None, target: str, max_length: int = 8192) -> RerankBackend:
    """The exact engine (float32) on the weights `name` names, here: what a deployment of them is checked against."""
    if not name:
        raise BadRequest(f"{target} does not say which model it serves; name the reference with --reference MODEL "
                         "(the hub id or folder of the same weights)")
    return open_backend(model_and_dtype(name)[0], dtype="float32", max_length=max_length)
