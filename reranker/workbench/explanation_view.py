"""The "Why?" view of a card (its sentences shaded by how they move the score) and query words marked in a text.

HTML built here for st.html, with every user string escaped; no Streamlit, so plain tests reach it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from reranker.analysis.explanations import Span

FOR_COLOUR = (11, 110, 79)
"""Green: the sentence pushes towards "yes"."""
AGAINST_COLOUR = (198, 40, 40)
"""Red: towards "no"."""
_LATIN_WORD = re.compile(r"[0-9A-Za-z\u00c0-\u024f]{3,}")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_STOPWORDS = frozenset("the and for are was were what which who whom whose when where why how does did with from "
                       "that this these those into about have has had not you your its".split())


def query_terms(query: str) -> list[str]:
    """What to look for in documents: the query's words of three letters or more (not the commonest), and for
    Chinese (written without spaces) every two-character piece of each run of Chinese characters."""
    terms = {w.lower() for w in _LATIN_WORD.findall(query) if w.lower() not in _STOPWORDS}
    for run in _CJK_RUN.findall(query):
        terms.update(run[i:i + 2] for i in range(max(len(run) - 1, 1)))
    return sorted(terms, key=lambda t: (-len(t), t))


def highlighted(text: str, terms: Sequence[str]) -> str:
    """`text` escaped, each occurrence of a term (any case) wrapped in <mark>."""
    if not terms:
        return html.escape(text)
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(text):
        out += [html.escape(text[last:match.start()]), f"<mark>{html.escape(match.group())}</mark>"]
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def explanation_html(document: str, spans: Sequence[Span], terms: Sequence[str] = (), top: int = 3) -> str:
    """The document with each sentence shaded by its delta (green for, red against, stronger for more), a legend,
    and the sentences that push most each way; a note when only the first sentences were explained."""
    if not spans:
        return '<div class="why"><p class="why-note">Nothing to explain: the document is blank.</p></div>'
    scale = max(abs(s.delta) for s in spans) or 1.0
    parts, last = [], 0
    for span in spans:
        parts.append(html.escape(document[last:span.start]))
        parts.append(f'<span class="why-span" style="background:{_shade(span.delta, scale)}" '
                     f'title="{span.delta:+.3f} log-odds">{highlighted(span.text, terms)}'
                     f'<sup>{span.delta:+.2f}</sup></span>')
        last = span.end
    explained = spans[-1].end
    rest = document[explained:]
    note = ""
    if len(spans) == 1 and not document[explained:].strip():
        note = ('<p class="why-note">The document is one sentence: its number compares it with an empty '
                "document.</p>")
    elif rest.strip():
        note = (f'<p class="why-note">Only the first {len(spans)} sentences are explained; the rest is shown '
                "unshaded.</p>")
    legend = (f'<div class="why-legend"><span style="background:{_shade(-scale, scale)}">pushes towards “no”</span>'
              f'<span style="background:{_shade(scale, scale)}">pushes towards “yes”</span>'
              f'<span>number: how far the sentence moves the log-odds, + towards “yes”, − towards “no” (measured by '
              f'deleting it; strongest here: {scale:.2f})</span></div>')
    ranked = sorted(spans, key=lambda s: s.delta)
    against = [s for s in ranked[:top] if s.delta < 0]
    towards = [s for s in reversed(ranked[-top:]) if s.delta > 0]
    lists = (_top_list("Most for", towards) + _top_list("Most against", against))
    return (f'<div class="why">{legend}{note}<div class="why-text">{"".join(parts)}{html.escape(rest)}</div>'
            f'{lists}</div>')


def _top_list(title: str, spans: Sequence[Span]) -> str:
    if not spans:
        return ""
    items = "".join(f"<li><b>{s.delta:+.2f}</b> {html.escape(_short(s.text))}</li>" for s in spans)
    return f'<div class="why-top"><b>{title}</b><ol>{items}</ol></div>'


def _shade(delta: float, scale: float) -> str:
    red, green, blue = FOR_COLOUR if delta > 0 else AGAINST_COLOUR
    strength = min(abs(delta) / scale, 1.0) * 0.45
    return f"rgba({red}, {green}, {blue}, {strength:.3f})"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
