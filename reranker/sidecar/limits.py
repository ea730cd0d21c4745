"""What one request or job may ask: sizes (TooLarge, naming the limit and its setting) and texts the model can
read (BadRequest, naming the field)."""

from __future__ import annotations

from collections.abc import Sequence

from reranker.core.failures import BadRequest, TooLarge
from reranker.core.ranking import Query
from reranker.sidecar.settings import Settings


def check_text(settings: Settings, name: str, text: str) -> None:
    """One query, document or instruction; `name` says which, as the client knows it."""
    cap = settings.max_document_chars
    if len(text) > cap:
        raise TooLarge(f"{name} has {len(text):,} characters; the limit is {cap:,} per text "
                       "(RERANKER_MAX_DOCUMENT_CHARS)")
    check_unicode(name, text)


def check_unicode(name: str, text: str) -> None:
    """Text the tokenizer and a JSON answer can carry: no lone surrogate (a "\\ud800" escape in the JSON)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadRequest(f"{name} is not valid Unicode text: it holds a lone surrogate ({text[e.start]!r}) at "
                           f"character {e.start}; send the text as UTF-8 (in JSON, escape only whole characters)"
                           ) from None


def check_queries(settings: Settings, queries: Sequence[Query], several_queries: bool) -> None:
    """Every text of these queries: none blank (a query), too long or unreadable."""
    for q, query in enumerate(queries):
        name = f"queries[{q}]" if several_queries else "query"
        if not query.query.strip():
            raise BadRequest(f"{name} is blank; send the text to rank the documents against")
        check_text(settings, name, query.query)
        if query.instruction is not None:
            check_text(settings, "instruction", query.instruction)
        for d, document in enumerate(query.documents):
            check_text(settings, f"documents[{q}][{d}]" if several_queries else f"documents[{d}]", document)


def check_interactive(settings: Settings, queries: Sequence[Query], several_queries: bool) -> None:
    """Limits of a request answered while the client waits: documents per query, pairs, and every text."""
    for q, query in enumerate(queries):
        if len(query.documents) > settings.max_documents:
            where = f"documents[{q}]" if several_queries else "documents"
            raise TooLarge(f"{where} has {len(query.documents):,} documents; the limit is "
                           f"{settings.max_documents:,} per query (RERANKER_MAX_DOCUMENTS); send more as a job "
                           "(POST /api/jobs)")
    pairs = sum(len(query.documents) for query in queries)
    if pairs > settings.max_request_pairs:
        raise TooLarge(f"the request has {pairs:,} (query, document) pairs; the limit is "
                       f"{settings.max_request_pairs:,} per request (RERANKER_MAX_REQUEST_PAIRS); "
                       "send it as a job (POST /api/jobs)")
    check_queries(settings, queries, several_queries)


def check_job(settings: Settings, pairs: int) -> None:
    if pairs > settings.max_job_pairs:
        raise TooLarge(f"the job has {pairs:,} (query, document) pairs; the limit is {settings.max_job_pairs:,} "
                       "per job (RERANKER_MAX_JOB_PAIRS); split it into several jobs")
