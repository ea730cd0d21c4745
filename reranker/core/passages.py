"""Long documents read as passages: each document cut into passages of at most N of its own tokens, each passage
judged as a document of its own, the best passage standing for the document (Query.passage_tokens).

Where a passage ends: at the last sentence end (English or Chinese: . ! ? 。！？；, or a line end) in the last half
of its N tokens; in code (a document that looks like code), at the last line end; where there is none, after N
tokens. The next passage starts OVERLAP_SHARE of N tokens before that end, at the first token that starts a
sentence (or a line, in code) there, so a sentence cut by a window is read whole by the next one; passages run in
document order and together cover the whole document (up to `max_passages`). A document of N tokens or fewer is one
passage: the document itself, judged as it would be without passages.

A passage is the text `document[start:end]` (blanks at its ends left out) and is scored exactly as that text alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from reranker.core.failures import UnsupportedOption
from reranker.core.ranking import Judgement, Passage, Query, best_of
from reranker.core.sentences import SENTENCE_END, looks_like_code

OVERLAP_SHARE = 0.125
"""How much of N a passage shares with the one before it (at most; it starts at a sentence start)."""
LOOK_BACK_SHARE = 0.5
"""A passage ends at a sentence end only within the last half of its N tokens; earlier, it would waste most of the
window (then it ends after N tokens, mid-sentence)."""

Spans = list[tuple[int, int]]
"""A text's tokens as (start, end) character offsets, in order."""
_WORD = re.compile(r"[0-9A-Za-z\u00c0-\u024f]+|\S")


def check_passage_options(q: Query, window_tokens: int | None = None) -> None:
    """UnsupportedOption (a ValueError), said for the person who asked, when the passage options cannot be honoured."""
    if q.passage_tokens is None:
        if q.max_passages is not None:
            raise UnsupportedOption("max_passages needs passage_tokens (how long a passage is)")
        return
    if q.passage_tokens < 1:
        raise UnsupportedOption(f"passage_tokens is {q.passage_tokens}; a passage holds at least 1 token")
    if window_tokens is not None and q.passage_tokens > window_tokens:
        raise UnsupportedOption(f"passage_tokens is {q.passage_tokens:,}, more than the {window_tokens:,} tokens a "
                                "document can have in the model's window with its query and instruction; ask for "
                                "fewer")
    if q.max_passages is not None and q.max_passages < 1:
        raise UnsupportedOption(f"max_passages is {q.max_passages}; read at least 1 passage of each document")


def passage_bounds(text: str, spans: Spans, tokens: int, max_passages: int | None = None,
                   count: Callable[[str], int] | None = None) -> list[tuple[int, int]]:
    """(start, end) of each passage of `text` (its tokens' `spans`), in document order; one, the whole text, when it
    has no more than `tokens` tokens. `count`: a passage's tokens read alone; a passage it finds over `tokens` (a
    cut inside a character split into several byte tokens reads it whole) ends a token earlier until it fits."""
    n = len(spans)
    if n <= tokens:
        return [(0, len(text))]
    ends = _break_after(text, spans, looks_like_code(text))
    bounds: list[tuple[int, int]] = []
    first = 0
    while first < n and (max_passages is None or len(bounds) < max_passages):
        last = min(first + tokens, n)  # one past the passage's last token
        if last < n:
            earliest = first + max(1, int(tokens * (1 - LOOK_BACK_SHARE)))
            last = next((k for k in range(last, earliest - 1, -1) if ends[k - 1]), last)
        while count is not None and last > first + 1 and count(text[slice(*_trimmed(
                text, spans[first][0], spans[last - 1][1]))]) > tokens:
            last -= 1
        bounds.append(_trimmed(text, spans[first][0], spans[last - 1][1]))
        if last >= n:
            break
        back = max(first + 1, last - int(tokens * OVERLAP_SHARE))
        first = next((k for k in range(back, last) if ends[k - 1]), last)
    return bounds


def _break_after(text: str, spans: Spans, code: bool) -> list[bool]:
    """For each token, whether a sentence (a line, in code) ends with it: a stop within it, or in the blank text
    between it and the next token."""
    out = []
    for k, (start, _) in enumerate(spans):
        gap_end = spans[k + 1][0] if k + 1 < len(spans) else len(text)
        piece = text[start:gap_end]
        out.append("\n" in piece if code else bool(SENTENCE_END.search(piece + " ")))
    return out


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def estimated_spans(text: str) -> Spans:
    """Tokens as a tokenizer would roughly cut them, for backends with no tokenizer here (a vLLM or Cohere-style
    server): a Latin word a token per four letters, any other character one. Real tokenizers cut about as finely."""
    spans: Spans = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        step = 4 if text[start].isascii() and text[start].isalnum() else 1
        spans.extend((i, min(i + step, end)) for i in range(start, end, step))
    return spans


def judge_in_passages(queries: Sequence[Query], judge: Callable[[list[Query]], list[list[Judgement]]],
                      spans_of: Callable[[list[str]], list[Spans]],
                      window_tokens: int | None = None) -> list[list[Judgement]]:
    """Each document of a query with passage_tokens judged as its passages by `judge` (which sees plain queries,
    the passages as their documents, all in one call so they share passes and the query's prefix); the document's
    judgement is its best passage's, with every passage's; queries without passages pass through.

    `spans_of`: each text's token spans; `window_tokens`: the most tokens a document can have in the model's
    window (a passage_tokens above it is refused)."""
    for q in queries:
        check_passage_options(q, window_tokens)

    def count(text: str) -> int:
        return len(spans_of([text])[0])

    plain: list[Query] = []
    layout: list[list[list[tuple[int, int]]] | None] = []
    for q in queries:
        if q.passage_tokens is None:
            plain.append(q)
            layout.append(None)
            continue
        bounds = [passage_bounds(d, spans, q.passage_tokens, q.max_passages, count)
                  for d, spans in zip(q.documents, spans_of(list(q.documents)))]
        plain.append(replace(q, documents=[d[a:b] for d, parts in zip(q.documents, bounds) for a, b in parts],
                             passage_tokens=None, max_passages=None))
        layout.append(bounds)
    verdicts = judge(plain)
    out = []
    for q, bounds, judged in zip(queries, layout, verdicts):
        if bounds is None:
            out.append(judged)
            continue
        folded, at = [], 0
        for document, parts in zip(q.documents, bounds):
            mine = judged[at:at + len(parts)]
            at += len(parts)
            passages = tuple(Passage(a, b, j.score, j.logit) for (a, b), j in zip(parts, mine))
            best = best_of(passages)
            read_all = parts[-1][1] >= len(document.rstrip())
            tokens = None if any(j.tokens is None for j in mine) else sum(j.tokens for j in mine)
            truncated = None if any(j.truncated is None for j in mine) else any(j.truncated for j in mine)
            folded.append(Judgement(best.score, best.logit, tokens,
                                    truncated if read_all else True, passages))
        out.append(folded)
    return out
