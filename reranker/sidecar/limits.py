"""Size limits on what one request or job may ask; over a limit is a TooLarge error that names the limit."""

from __future__ import annotations

from collections.abc import Sequence

from reranker.sidecar.errors import TooLarge
from reranker.sidecar.settings import Settings


def check_text(settings: Settings, name: str, text: str) -> None:
    """Characters in one query, document or instruction; `name` says which, as the client knows it."""
    cap = settings.max_document_chars
    if len(text) > cap:
        raise TooLarge(f"{name} has {len(text):,} characters; the limit is {cap:,} per text "
                       "(RERANKER_MAX_DOCUMENT_CHARS)")


def check_texts(settings: Settings, queries: Sequence[tuple[str, Sequence[str]]], instruction: str | None,
                several_queries: bool) -> None:
    """Characters per query, document and instruction."""
    if instruction is not None:
        check_text(settings, "instruction", instruction)
    for q, (query, documents) in enumerate(queries):
        check_text(settings, f"queries[{q}]" if several_queries else "query", query)
        for d, document in enumerate(documents):
            check_text(settings, f"documents[{q}][{d}]" if several_queries else f"documents[{d}]", document)


def check_interactive(settings: Settings, queries: Sequence[tuple[str, Sequence[str]]], instruction: str | None,
                      several_queries: bool) -> None:
    """Limits of /v1/rerank and /api/rerank: documents per query, pairs per request, characters per text."""
    for q, (_, documents) in enumerate(queries):
        if len(documents) > settings.max_documents:
            where = f"documents[{q}]" if several_queries else "documents"
            raise TooLarge(f"{where} has {len(documents):,} documents; the limit is {settings.max_documents:,} "
                           "per query (RERANKER_MAX_DOCUMENTS); send more as a job (POST /api/jobs)")
    pairs = sum(len(documents) for _, documents in queries)
    if pairs > settings.max_request_pairs:
        raise TooLarge(f"the request has {pairs:,} (query, document) pairs; the limit is "
                       f"{settings.max_request_pairs:,} per request (RERANKER_MAX_REQUEST_PAIRS); "
                       "send it as a job (POST /api/jobs)")
    check_texts(settings, queries, instruction, several_queries)


def check_job(settings: Settings, pairs: int) -> None:
    if pairs > settings.max_job_pairs:
        raise TooLarge(f"the job has {pairs:,} (query, document) pairs; the limit is {settings.max_job_pairs:,} "
                       "per job (RERANKER_MAX_JOB_PAIRS); split it into several jobs")
