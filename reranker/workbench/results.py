"""What the workbench shows of a ranking: result cards (HTML, every user string escaped), tables, exports.

No Streamlit here, so plain tests reach all of it; the pages hand these to st.html / st.dataframe.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from reranker.core.ranking import RankedDocument
from reranker.formats.documents import ParsedDocuments
from reranker.formats.exports import Record, export_records, label_value
from reranker.workbench.explanation_view import highlighted

ScoreMode = Literal["Probability", "Log-odds"]
SCORE_MODES: tuple[ScoreMode, ...] = ("Probability", "Log-odds")
_TABLE_NAMES = {"rank": "rank", "score": "score", "document": "text", "logit": "log-odds", "index": "input #",
                "tokens": "tokens", "truncated": "truncated", "passage": "best passage"}
"""The record's fields as the Table tab names them, in its order (input # counts from 1): rank, score and the text
first, so a narrow screen shows what each row is; the other numbers after it."""


@dataclass(frozen=True)
class Ranking:
    """One Rerank press: what was asked and every document best first. Views re-render it, never re-score."""

    model: str
    query: str
    instruction: str
    parsed: ParsedDocuments
    ranked: list[RankedDocument]
    passage_tokens: int | None = None
    """Documents were read as passages of this many tokens (None: whole)."""
    blocks: bool = False
    """The documents box was read one document per blank-line-separated block (workbench.document_blocks)."""

    def asked(self, model: str, query: str, instruction: str, parsed: ParsedDocuments,
              passage_tokens: int | None = None) -> bool:
        """Whether these inputs are the ones this ranking answers."""
        return (model, query, instruction, parsed.documents, passage_tokens) == (
            self.model, self.query, self.instruction, self.parsed.documents, self.passage_tokens)

    def records(self, ranked: Sequence[RankedDocument] | None = None) -> list[Record]:
        """Every document (or those of `ranked`), best first, as exported rows."""
        return export_records(self.ranked if ranked is None else ranked, self.query, self.instruction, self.model,
                              self.parsed.labels)


def movement(doc: RankedDocument) -> int:
    """Places the document moved up from its input position (negative: down)."""
    return (doc.index + 1) - doc.rank


def shown_value(doc: RankedDocument, mode: ScoreMode) -> float:
    return doc.logit if mode == "Log-odds" else doc.score


def format_score(doc: RankedDocument, mode: ScoreMode) -> str:
    return f"{doc.logit:+.3f}" if mode == "Log-odds" else f"{doc.score:.4f}"


def card_html(doc: RankedDocument, mode: ScoreMode = "Probability", label: float | None = None,
              duplicate_of: int | None = None, terms: Sequence[str] = ()) -> str:
    """One result card, the query's `terms` marked in its text. The text is escaped: `<img src=x>` shows as those
    characters."""
    moved = movement(doc)
    if moved > 0:
        arrow = f'<span class="move up" title="moved up {moved} from input #{doc.index + 1}">▲ {moved}</span>'
    elif moved < 0:
        arrow = f'<span class="move down" title="moved down {-moved} from input #{doc.index + 1}">▼ {-moved}</span>'
    else:
        arrow = '<span class="move same" title="same place as in the input">= 0</span>'
    badges = []
    if doc.truncated:
        badges.append('<span class="badge warn" title="cut to fit the model\'s max length">✂ truncated</span>')
    if duplicate_of is not None:
        badges.append(f'<span class="badge">duplicate of input #{duplicate_of + 1}</span>')
    if label is not None:
        badges.append(f'<span class="badge label">label {label:g}</span>')
    best = doc.best_passage() if doc.passages and len(doc.passages) > 1 else None
    text = highlighted(doc.document, terms)
    strip = ""
    if best is not None:
        badges.append(f'<a class="badge passage" href="#passage-{doc.index}" title="the part of the document that '
                      f'scores for it; click to see it">best passage: characters {best.start:,}–{best.end:,} of '
                      f'{len(doc.document):,}</a>')
        text = (highlighted(doc.document[:best.start], terms) + f'<span class="best-passage" id="passage-{doc.index}">'
                + highlighted(doc.document[best.start:best.end], terms) + "</span>"
                + highlighted(doc.document[best.end:], terms))
        strip = passage_strip(doc)
    width = max(0.0, min(1.0, doc.score)) * 100
    top = " top" if doc.rank == 1 else ""
    return (
        f'<div class="rank-card{top}" data-rank="{doc.rank}">'
        f'<div class="card-head"><span class="rank">#{doc.rank}</span>'
        f'<span class="score" title="{html.escape(mode)}">{format_score(doc, mode)}</span>'
        f'<span class="meta">log-odds {doc.logit:+.2f} · input #{doc.index + 1}{tokens_text(doc)}</span>'
        f'{arrow}{"".join(badges)}</div>'
        f'<div class="score-bar"><div style="width:{width:.1f}%"></div></div>{strip}'
        f'<div class="doc-text">{text}</div></div>'
    )


def tokens_text(doc: RankedDocument) -> str:
    """' · 1003 tokens'; read as passages, the tokens of all of them, which overlap (so more than the document's)."""
    if doc.tokens is None:
        return ""
    passages = len(doc.passages or ())
    if passages > 1:
        return (f' · <span title="the passages overlap by about an eighth, so together they hold more tokens than the '
                f'document">{doc.tokens} tokens read in {passages} overlapping passages</span>')
    return f" · {doc.tokens} tokens"


def passage_strip(doc: RankedDocument) -> str:
    """Every passage's score along the document: a band per passage, where it lies in the text, darker for a higher
    score (from the document's lowest passage score to its highest, so the differences show however close they
    are); the best one outlined. Hovering one tells its characters and score. A line under it says how to read it."""
    length = max(len(doc.document), 1)
    best = doc.best_passage()
    logits = [p.logit for p in doc.passages or ()]
    low, spread = min(logits, default=0.0), (max(logits, default=0.0) - min(logits, default=0.0)) or 1.0
    bands = []
    for p in doc.passages or ():
        edge = " best" if p == best else ""
        opacity = 0.25 + 0.75 * (p.logit - low) / spread
        bands.append(f'<span class="band{edge}" style="left:{p.start / length * 100:.2f}%;'
                     f'width:{max((p.end - p.start) / length * 100, 0.5):.2f}%;opacity:{opacity:.2f}" '
                     f'title="characters {p.start:,}–{p.end:,}: score {p.score:.4f}, log-odds {p.logit:+.2f}"></span>')
    legend = (f'<div class="passage-legend" style="font-size:0.75rem;opacity:0.8;margin:-0.35rem 0 0.4rem">'
              f'{len(logits)} passages along the document, darker for a higher score (log-odds {low:+.2f} to '
              f'{low + (spread if len(set(logits)) > 1 else 0):+.2f}); the best outlined</div>')
    return (f'<div class="passage-strip" style="height:12px" title="each passage\'s score along the document">'
            f'{"".join(bands)}</div>{legend}')


def table_frame(ranked: Sequence[RankedDocument], labels: Sequence[float] | None = None) -> pd.DataFrame:
    """The Table tab: one row per document, best first (input # from 1, as on the cards); `truncated` only when a
    document was cut, `best passage` only when documents were read as passages, the label before the text."""
    frame = pd.DataFrame([d.record() for d in ranked], columns=list(_TABLE_NAMES))
    frame["index"] += 1
    if frame["passage"].isna().all():
        frame = frame.drop(columns="passage")
    if not frame["truncated"].fillna(False).astype(bool).any():
        frame = frame.drop(columns="truncated")
    frame = frame.rename(columns=_TABLE_NAMES)
    if labels is not None:
        frame.insert(frame.columns.get_loc("text"), "label", [label_value(labels[d.index]) for d in ranked])
    return frame
