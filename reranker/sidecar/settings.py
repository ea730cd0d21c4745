"""The sidecar's limits and switches, read once from the environment (every one has a default).

Each field is one variable of reranker.core.environment, which declares its name, default, meaning and how it is
read; this is the sidecar's group of them, read at once when it starts, plus the checks only a server makes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reranker.core import environment
from reranker.core.addresses import is_loopback, is_server
from reranker.core.environment import SettingsError

__all__ = ["Settings", "SettingsError", "refuse_open_exposure", "refuse_own_address"]


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
    """The sidecar's settings; each field's default, meaning and variable are in reranker.core.environment."""

    server: str | None = environment.SERVER.default
    """RERANKER_SERVER: the server to score on (the sidecar is then a gateway); None: the model here."""
    server_key: str | None = environment.SERVER_KEY.default
    """RERANKER_SERVER_KEY."""
    data_dir: Path = environment.DATA_DIR.default
    """RERANKER_DATA_DIR."""
    api_key: str | None = environment.API_KEY.default
    """RERANKER_API_KEY."""
    allow_open: bool = environment.ALLOW_OPEN.default
    """RERANKER_ALLOW_OPEN (or --allow-open)."""
    cors_origins: tuple[str, ...] = environment.CORS_ORIGINS.default
    """RERANKER_CORS_ORIGINS."""
    max_documents: int = environment.MAX_DOCUMENTS.default
    """RERANKER_MAX_DOCUMENTS."""
    max_document_chars: int = environment.MAX_DOCUMENT_CHARS.default
    """RERANKER_MAX_DOCUMENT_CHARS."""
    max_body_bytes: int = environment.MAX_BODY_BYTES.default
    """RERANKER_MAX_BODY_BYTES."""
    max_request_pairs: int = environment.MAX_REQUEST_PAIRS.default
    """RERANKER_MAX_REQUEST_PAIRS."""
    max_job_bytes: int = environment.MAX_JOB_BYTES.default
    """RERANKER_MAX_JOB_BYTES."""
    max_job_pairs: int = environment.MAX_JOB_PAIRS.default
    """RERANKER_MAX_JOB_PAIRS."""
    max_queue: int = environment.MAX_QUEUE.default
    """RERANKER_MAX_QUEUE."""
    call_max_pairs: int = environment.BATCH_MAX_PAIRS.default
    """RERANKER_BATCH_MAX_PAIRS."""
    call_max_chars: int = environment.BATCH_MAX_CHARS.default
    """RERANKER_BATCH_MAX_CHARS."""
    slice_seconds: float = environment.SLICE_SECONDS.default
    """RERANKER_SLICE_SECONDS."""
    jobs_yield_seconds: float = environment.JOBS_YIELD_SECONDS.default
    """RERANKER_JOBS_YIELD_SECONDS."""
    job_chunk_pairs: int = environment.JOB_CHUNK_PAIRS.default
    """RERANKER_JOB_CHUNK_PAIRS."""
    extra_models: tuple[str, ...] = environment.EXTRA_MODELS.default
    """RERANKER_EXTRA_MODELS: models this sidecar may load besides its own, on the first request whose `model` names
    one (each checked against free memory first); any other `model` is answered by its own model."""
    job_chunk_delay: float = environment.JOB_CHUNK_DELAY.default
    """RERANKER_JOB_CHUNK_DELAY."""
    calibration: Path | None = environment.CALIBRATION.default
    """RERANKER_CALIBRATION: a CAL.json the backend's scores are read through (core/calibrated.py)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings in `env` (default: this process's environment); SettingsError naming the variable whose
        value cannot be used."""
        origins = environment.CORS_ORIGINS.read(env)
        server = environment.SERVER.read(env)
        if server is not None and not is_server(server):
            raise SettingsError(f"RERANKER_SERVER={server!r} is not an http:// or https:// address; to use a model "
                                "in this process, set RERANKER_MODEL instead")
        return cls(
            server=server,
            server_key=environment.SERVER_KEY.read(env),
            data_dir=environment.DATA_DIR.read(env),
            api_key=environment.API_KEY.read(env),
            allow_open=environment.ALLOW_OPEN.read(env),
            cors_origins=origins,
            max_documents=environment.MAX_DOCUMENTS.read(env),
            max_document_chars=environment.MAX_DOCUMENT_CHARS.read(env),
            max_body_bytes=environment.MAX_BODY_BYTES.read(env),
            max_request_pairs=environment.MAX_REQUEST_PAIRS.read(env),
            max_job_bytes=environment.MAX_JOB_BYTES.read(env),
            max_job_pairs=environment.MAX_JOB_PAIRS.read(env),
            max_queue=environment.MAX_QUEUE.read(env),
            call_max_pairs=environment.BATCH_MAX_PAIRS.read(env),
            call_max_chars=environment.BATCH_MAX_CHARS.read(env),
            slice_seconds=environment.SLICE_SECONDS.read(env),
            jobs_yield_seconds=environment.JOBS_YIELD_SECONDS.read(env),
            job_chunk_pairs=environment.JOB_CHUNK_PAIRS.read(env),
            job_chunk_delay=environment.JOB_CHUNK_DELAY.read(env),
            extra_models=environment.EXTRA_MODELS.read(env),
            calibration=environment.CALIBRATION.read(env),
        )
