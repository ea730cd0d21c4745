"""Size limits on what one request or job may ask; over a limit is a 413 that names the limit."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException

from reranker.sidecar.settings import Settings


def too_large(message: str) -> HTTPException:
    return HTTPException(413, message)


def check_texts(settings: Settings, queries: Sequence[tuple[str, Sequence[str]]], instruction: str | None,
                batch: bool) -> None:
    """Characters per query, document and instruction."""
    cap = settings.max_document_chars

    def check(name: str, text: str) -> None:
        if len(text) > cap:
            raise too_large(f"{name} has {len(text):,} characters; the limit is {cap:,} per text "
                            "(RERANKER_MAX_DOCUMENT_CHARS)")

    if instruction is not None:
        check("instruction", instruction)
    for q, (query, documents) in enumerate(queries):
        check(f"queries[{q}]" if batch else "query", query)
        for d, document in enumerate(documents):
            check(f"documents[{q}][{d}]" if batch else f"documents[{d}]", document)


def check_interactive(settings: Settings, queries: Sequence[tuple[str, Sequence[str]]], instruction: str | None,
                      batch: bool) -> None:
    """Limits of /v1/rerank and /api/rerank: documents per query, pairs per request, characters per text."""
    for q, (_, documents) in enumerate(queries):
        if len(documents) > settings.max_documents:
            where = f"documents[{q}]" if batch else "documents"
            raise too_large(f"{where} has {len(documents):,} documents; the limit is {settings.max_documents:,} "
                            "per query (RERANKER_MAX_DOCUMENTS); send more as a job (POST /api/jobs)")
    pairs = sum(len(documents) for _, documents in queries)
    if pairs > settings.max_request_pairs:
        raise too_large(f"the request has {pairs:,} (query, document) pairs; the limit is "
                        f"{settings.max_request_pairs:,} per request (RERANKER_MAX_REQUEST_PAIRS); "
                        "send it as a job (POST /api/jobs)")
    check_texts(settings, queries, instruction, batch)


def check_job(settings: Settings, pairs: int) -> None:
    if pairs > settings.max_job_pairs:
        raise too_large(f"the job has {pairs:,} (query, document) pairs; the limit is {settings.max_job_pairs:,} "
                        "per job (RERANKER_MAX_JOB_PAIRS); split it into several jobs")
