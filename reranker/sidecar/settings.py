"""The sidecar's limits and switches, read once from the environment (every one has a default)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reranker.core.addresses import is_loopback, is_server


class SettingsError(ValueError):
    """An environment variable holds something the sidecar cannot use; the message names it."""


def refuse_own_address(server: str | None, host: str, port: int) -> None:
    """A sidecar whose backend were itself would wait on its own queue forever: refuse RERANKER_SERVER pointing at
    the address this sidecar is about to listen on."""
    if server is None:
        return
    target = urlsplit(server)
    local = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "[::1]", host.lower()}
    target_port = target.port or (443 if target.scheme == "https" else 80)
    if (target.hostname or "").lower() in local and target_port == port:
        raise SettingsError(f"RERANKER_SERVER={server} is this sidecar's own address ({host}:{port}); a sidecar "
                            "cannot be its own backend. Point it at another server, or unset it to load the model "
                            "here")


def refuse_open_exposure(host: str, settings: Settings) -> None:
    """Listening beyond this machine without an API key would let anyone who reaches it score and read jobs: refuse,
    unless RERANKER_ALLOW_OPEN (or --allow-open) accepts that on purpose."""
    if is_loopback(host) or settings.api_key or settings.allow_open:
        return
    raise SettingsError(f"listening on {host} opens the API (and the workbench's pages) to every machine that can "
                        "reach this one, and RERANKER_API_KEY is not set. Set RERANKER_API_KEY to a secret (clients "
                        "then send 'Authorization: Bearer <key>'; the pages ask for it once), or set "
                        "RERANKER_ALLOW_OPEN=1 (or pass --allow-open) to accept an open server on purpose")


@dataclass(frozen=True)
class Settings:
    server: str | None = None
    """RERANKER_SERVER: score on this server (a Qwen-Ranker sidecar, vLLM, or a /v1/rerank API) instead of loading
    the model here; the sidecar is then a gateway."""
    server_key: str | None = None
    """RERANKER_SERVER_KEY: that server's key (this sidecar's own is RERANKER_API_KEY)."""
    data_dir: Path = Path("data")
    """RERANKER_DATA_DIR: where jobs.sqlite3 lives."""
    api_key: str | None = None
    """RERANKER_API_KEY: when set, every endpoint but /health needs `Authorization: Bearer <key>`."""
    allow_open: bool = False
    """RERANKER_ALLOW_OPEN=1: listen beyond loopback without an API key, on purpose."""
    cors_origins: tuple[str, ...] = ()
    """RERANKER_CORS_ORIGINS: comma-separated origins allowed to call from a browser; none by default."""
    max_documents: int = 1000
    """RERANKER_MAX_DOCUMENTS: documents per query in one /v1/rerank or /api/rerank request."""
    max_document_chars: int = 100_000
    """RERANKER_MAX_DOCUMENT_CHARS: characters per document, query or instruction."""
    max_body_bytes: int = 10 * 1024 * 1024
    """RERANKER_MAX_BODY_BYTES: request body size, except job submissions."""
    max_request_pairs: int = 10_000
    """RERANKER_MAX_REQUEST_PAIRS: (query, document) pairs in one interactive request; more goes to /api/jobs."""
    max_job_bytes: int = 20 * 1024 * 1024
    """RERANKER_MAX_JOB_BYTES: body size of a job submission (JSON or CSV upload)."""
    max_job_pairs: int = 200_000
    """RERANKER_MAX_JOB_PAIRS: pairs in one job."""
    max_queue: int = 1000
    """RERANKER_MAX_QUEUE: interactive requests waiting for the model before new ones get 503."""
    call_max_pairs: int = 1024
    """RERANKER_BATCH_MAX_PAIRS: pairs in one engine call, from one request or merged from several."""
    call_max_chars: int = 1_000_000
    """RERANKER_BATCH_MAX_CHARS: characters merged into one engine call (a cheap stand-in for tokens)."""
    slice_seconds: float = 15.0
    """RERANKER_SLICE_SECONDS: about how long one engine call may run; bigger requests are served in slices, and
    a request that arrives meanwhile waits about this long at most behind them."""
    jobs_yield_seconds: float = 10.0
    """RERANKER_JOBS_YIELD_SECONDS: for this long after an interactive request, a job's engine calls are kept as
    short as an interactive call, so a request waits little behind a job (which then runs slower); 0: never."""
    job_chunk_pairs: int = 32
    """RERANKER_JOB_CHUNK_PAIRS: pairs a job scores, and commits, at a time."""
    extra_models: tuple[str, ...] = ()
    """RERANKER_EXTRA_MODELS: comma-separated models (hub ids or folders) this sidecar may load besides its own, on
    the first request whose `model` names one (each checked against free memory first); any other `model` is
    answered by its own model, as before."""
    job_chunk_delay: float = 0.0
    """RERANKER_JOB_CHUNK_DELAY: seconds to pause after each job chunk (tests use it to catch a job mid-way)."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        origins = tuple(o.strip() for o in env.get("RERANKER_CORS_ORIGINS", "").split(",") if o.strip())
        if "*" in origins:
            raise SettingsError("RERANKER_CORS_ORIGINS may not be '*': list the origins that may call the API")
        server = env.get("RERANKER_SERVER", "").strip() or None
        if server is not None and not is_server(server):
            raise SettingsError(f"RERANKER_SERVER={server!r} is not an http:// or https:// address; to use a model "
                                "in this process, set RERANKER_MODEL instead")
        return cls(
            server=server,
            server_key=env.get("RERANKER_SERVER_KEY") or None,
            data_dir=Path(env.get("RERANKER_DATA_DIR") or "data"),
            api_key=env.get("RERANKER_API_KEY") or None,
            allow_open=_flag(env, "RERANKER_ALLOW_OPEN"),
            cors_origins=origins,
            max_documents=_int(env, "RERANKER_MAX_DOCUMENTS", cls.max_documents),
            max_document_chars=_int(env, "RERANKER_MAX_DOCUMENT_CHARS", cls.max_document_chars),
            max_body_bytes=_int(env, "RERANKER_MAX_BODY_BYTES", cls.max_body_bytes),
            max_request_pairs=_int(env, "RERANKER_MAX_REQUEST_PAIRS", cls.max_request_pairs),
            max_job_bytes=_int(env, "RERANKER_MAX_JOB_BYTES", cls.max_job_bytes),
            max_job_pairs=_int(env, "RERANKER_MAX_JOB_PAIRS", cls.max_job_pairs),
            max_queue=_int(env, "RERANKER_MAX_QUEUE", cls.max_queue),
            call_max_pairs=_int(env, "RERANKER_BATCH_MAX_PAIRS", cls.call_max_pairs),
            call_max_chars=_int(env, "RERANKER_BATCH_MAX_CHARS", cls.call_max_chars),
            slice_seconds=_float(env, "RERANKER_SLICE_SECONDS", cls.slice_seconds),
            jobs_yield_seconds=_float(env, "RERANKER_JOBS_YIELD_SECONDS", cls.jobs_yield_seconds),
            job_chunk_pairs=_int(env, "RERANKER_JOB_CHUNK_PAIRS", cls.job_chunk_pairs),
            job_chunk_delay=_float(env, "RERANKER_JOB_CHUNK_DELAY", cls.job_chunk_delay),
            extra_models=tuple(m.strip() for m in env.get("RERANKER_EXTRA_MODELS", "").split(",") if m.strip()),
        )


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise SettingsError(f"{name}={raw!r} must be at least 1")
    return value


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} may not be negative")
    return value


def _flag(env: dict[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise SettingsError(f"{name}={raw!r} is not 1 or 0")
