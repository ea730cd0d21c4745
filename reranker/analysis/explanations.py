"""Why a document scores what it does: how much each of its sentences moves the model towards "yes".

A sentence's `delta` is the document's logit minus the logit of the same document with that sentence's characters
deleted: positive means the sentence pushes towards "yes". Each deletion is one more (query, document) pair, so an
explanation costs one pair per sentence, scored in one call through any backend (the engine batches them and
reuses the shared query prefix; a server scores them as one request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reranker.core.backend import RerankBackend
from reranker.core.ranking import Query

MAX_SPANS = 40
"""Longer documents are explained by their first this many sentences (the last span then ends before the text)."""

_SENTENCE_END = re.compile(r"[.!?](?=\s)|[。！？；…]+|\n")
_CODE_LINE = re.compile(r"^(\s{2,}|\t)|[{};:)]\s*$|^\s*(def|class|return|import|from|if|for|while|function|const|let|"
                        r"var|public|private|#include)\b")


@dataclass(frozen=True)
class Span:
    start: int
    """Character offset of the span in the document."""
    end: int
    """One past its last character."""
    text: str
    delta: float
    """The document's logit minus its logit without this span: positive pushes towards "yes"."""


def explain(backend: RerankBackend, query: str, document: str, instruction: str | None = None,
            max_spans: int = MAX_SPANS) -> list[Span]:
    """The document's sentences (lines, for code) in order, each with its delta; [] for a blank document.

    Spans do not overlap and together cover every non-blank character, up to the first `max_spans` sentences."""
    bounds = sentence_spans(document)[:max_spans]
    if not bounds:
        return []
    variants = [document, *(document[:start] + document[end:] for start, end in bounds)]
    [judged] = backend.judge_many([Query(query, variants, instruction)])
    whole = judged[0].logit
    return [Span(start, end, document[start:end], whole - without.logit)
            for (start, end), without in zip(bounds, judged[1:])]


def sentence_spans(document: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, its surrounding blanks left out: English and Chinese sentence ends and line
    breaks cut; a document that looks like code is cut into lines only."""
    cut = re.compile(r"\n") if looks_like_code(document) else _SENTENCE_END
    spans, start = [], 0
    for match in cut.finditer(document):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(document)))
    return [trimmed for s, e in spans if (trimmed := _trim(document, s, e)) is not None]


def looks_like_code(document: str) -> bool:
    """Several lines, at least a third of them indented or ending as code does (braces, semicolons, colons)."""
    lines = [line for line in document.splitlines() if line.strip()]
    return len(lines) >= 2 and sum(bool(_CODE_LINE.search(line)) for line in lines) * 3 >= len(lines)


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
