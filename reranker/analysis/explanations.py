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
from reranker.core.ranking import Judgement, Progress, Query
from reranker.core.sentences import SENTENCE_END, looks_like_code

MAX_SPANS = 40
"""Longer documents are explained by their first this many sentences (the last span then ends before the text)."""


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
            max_spans: int = MAX_SPANS, progress: Progress | None = None) -> list[Span]:
    """The document's sentences (lines, for code) in order, each with its delta; [] for a blank document.

    Spans do not overlap and together cover every non-blank character, up to the first `max_spans` sentences."""
    bounds, asked = explanation_query(query, document, instruction, max_spans)
    if not bounds:
        return []
    [judged] = backend.judge_many([asked], progress)
    return spans_of(document, bounds, judged)


def explanation_query(query: str, document: str, instruction: str | None = None,
                      max_spans: int = MAX_SPANS) -> tuple[list[tuple[int, int]], Query]:
    """The sentences' (start, end), and the Query whose documents are the document and then the document without
    each sentence: what `explain` judges (the workbench judges it in steps, through its cache)."""
    bounds = sentence_spans(document)[:max_spans]
    variants = [document, *(document[:start] + document[end:] for start, end in bounds)]
    return bounds, Query(query, variants, instruction)


def spans_of(document: str, bounds: list[tuple[int, int]], judged: list[Judgement]) -> list[Span]:
    """Each sentence with its delta, from the judgements of explanation_query's documents."""
    whole = judged[0].logit
    return [Span(start, end, document[start:end], whole - without.logit)
            for (start, end), without in zip(bounds, judged[1:])]


def sentence_spans(document: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, its surrounding blanks left out: English and Chinese sentence ends and line
    breaks cut; a document that looks like code is cut into lines only."""
    cut = re.compile(r"\n") if looks_like_code(document) else SENTENCE_END
    spans, start = [], 0
    for match in cut.finditer(document):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(document)))
    return [trimmed for s, e in spans if (trimmed := _trim(document, s, e)) is not None]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
