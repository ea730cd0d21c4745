"""Plotly figures of the workbench: score decay with its cliff, and the bump chart of the comparison page."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

DEEP_BLUE = "#0b3d91"
CLIFF_RED = "#c62828"


@dataclass(frozen=True)
class Cliff:
    after_rank: int
    """The drop is between this rank and the next."""
    drop: float
    next_drop: float = 0.0
    """The second largest drop between neighbours (0 with only one)."""

    @property
    def clear(self) -> bool:
        """The drop stands out: at least CLEAR_RATIO times any other, so it says something about the list."""
        return self.drop > 0 and self.drop >= CLEAR_RATIO * self.next_drop


CLEAR_RATIO = 2.0


def find_cliff(values: Sequence[float]) -> Cliff | None:
    """The largest drop between neighbouring ranks of a best-first list; None with fewer than two values."""
    if len(values) < 2:
        return None
    drops = [values[i] - values[i + 1] for i in range(len(values) - 1)]
    i = max(range(len(drops)), key=lambda j: (drops[j], -j))
    return Cliff(after_rank=i + 1, drop=drops[i], next_drop=max((d for j, d in enumerate(drops) if j != i), default=0))


def cliff_caption(values: Sequence[float]) -> str | None:
    """What the largest drop says about a best-first list, in words that stay true wherever it falls; None when
    there is no drop to speak of."""
    cliff = find_cliff(values)
    if cliff is None or cliff.drop <= 0:
        return None
    where = f"Largest drop: {cliff.drop:.3f}, between rank {cliff.after_rank:,} and {cliff.after_rank + 1:,}"
    if not cliff.clear:
        return (f"No clear cliff: the largest drop ({cliff.drop:.3f}, after rank {cliff.after_rank:,}) is about the "
                f"size of the next ({cliff.next_drop:.3f}); the scores fall without a break.")
    below = len(values) - cliff.after_rank
    if cliff.after_rank <= below:
        who = "the top document stands" if cliff.after_rank == 1 else f"the top {cliff.after_rank} stand"
        return f"{where}: {who} apart from the rest."
    who = "the last document falls" if below == 1 else f"the last {below} fall"
    return f"{where}: {who} below the rest."


def decay_figure(values: Sequence[float], value_name: str = "score", threshold: float | None = None,
                 hover_texts: Sequence[str] | None = None) -> go.Figure:
    """Score (or log-odds) against rank, the cliff marked, and a threshold line when one is given."""
    ranks = list(range(1, len(values) + 1))
    fig = go.Figure(go.Scatter(
        x=ranks, y=list(values), mode="lines+markers", name=value_name, line={"color": DEEP_BLUE, "width": 2},
        text=plain_labels(hover_texts) if hover_texts is not None else None,
        hovertemplate=f"rank %{{x}}<br>{value_name} %{{y:.4f}}" + ("<br>%{text}" if hover_texts else "")
        + "<extra></extra>"))
    cliff = find_cliff(values)
    if cliff is not None and cliff.clear:
        fig.add_vrect(x0=cliff.after_rank, x1=cliff.after_rank + 1, fillcolor=CLIFF_RED, opacity=0.12, line_width=0)
        left_half = cliff.after_rank <= len(values) / 2  # the label runs towards the middle, so it stays in the chart
        fig.add_annotation(x=cliff.after_rank if left_half else cliff.after_rank + 1, y=1, xref="x", yref="paper",
                           xanchor="left" if left_half else "right", yanchor="bottom", showarrow=False,
                           text=f"cliff: a drop of {cliff.drop:.3f} after rank {cliff.after_rank}",
                           font={"color": CLIFF_RED, "size": 12})
        fig.add_trace(go.Scatter(
            x=[cliff.after_rank, cliff.after_rank + 1], y=[values[cliff.after_rank - 1], values[cliff.after_rank]],
            mode="lines+markers", name="cliff", line={"color": CLIFF_RED, "width": 4}, hoverinfo="skip"))
    if threshold is not None:
        above = sum(v >= threshold for v in values)
        fig.add_hline(y=threshold, line_dash="dash", line_color="#555",
                      annotation_text=f"threshold {threshold:g}: {above} above", annotation_position="bottom right")
    fig.update_layout(xaxis_title="rank", yaxis_title=value_name, showlegend=False, height=380,
                      margin={"l": 10, "r": 10, "t": 36, "b": 10})
    fig.update_xaxes(dtick=1 if len(values) <= 30 else None, range=[0.5, max(len(values), 1) + 0.5])
    return fig


def scatter_figure(x_name: str, x_logits: Sequence[float], y_name: str, y_logits: Sequence[float],
                   hover_texts: Sequence[str]) -> go.Figure:
    """Each document's log-odds in one run against another (input order), with the diagonal where they agree."""
    low, high = min(*x_logits, *y_logits), max(*x_logits, *y_logits)
    fig = go.Figure([
        go.Scatter(x=[low, high], y=[low, high], mode="lines", line={"color": "#9aa5b1", "dash": "dot"},
                   hoverinfo="skip"),
        go.Scatter(x=list(x_logits), y=list(y_logits), mode="markers", marker={"color": DEEP_BLUE, "size": 9},
                   customdata=plain_labels(hover_texts),
                   hovertemplate=f"%{{customdata}}<br>{x_name}: %{{x:+.3f}}<br>{y_name}: %{{y:+.3f}}<extra></extra>")])
    fig.update_layout(xaxis_title=f"log-odds in run {x_name}", yaxis_title=f"log-odds in run {y_name}",
                      showlegend=False, height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_yaxes(scaleanchor="x", scaleratio=1)  # one unit the same length both ways: the diagonal at 45°
    return fig


def bump_figure(ranks: Mapping[str, Sequence[int]], names: Sequence[str], hover_texts: Sequence[str] | None = None,
                highlight: Sequence[int] = ()) -> go.Figure:
    """How each document's rank moves from one instruction to the next.

    ranks: instruction name -> each document's rank (in input order); names: a short name per document.
    highlight: documents drawn thick (e.g. those in some instruction's top k); the rest are faint.
    """
    columns = list(ranks)
    fig = go.Figure()
    marked = set(highlight)
    names = plain_labels(names)
    hovers = plain_labels(hover_texts) if hover_texts is not None else names
    for i, name in enumerate(names):
        strong = not marked or i in marked
        fig.add_trace(go.Scatter(
            x=columns, y=[ranks[c][i] for c in columns], mode="lines+markers+text" if strong else "lines+markers",
            name=name, text=[name if c == columns[-1] else "" for c in columns], textposition="middle right",
            customdata=[hovers[i]] * len(columns), line={"width": 3 if strong else 1}, opacity=1.0 if strong else 0.3,
            cliponaxis=False,  # the names right of the last column lie in the margin, not the plot
            hovertemplate="%{customdata}<br>%{x}: rank %{y}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="rank", dtick=1 if len(names) <= 30 else None)
    fig.update_layout(showlegend=False, height=max(320, 28 * len(names)), margin={"l": 10, "r": 90, "t": 40, "b": 10})
    return fig


def plain_labels(texts: Sequence[str], limit: int = 80) -> list[str]:
    """User text for plotly labels, which read a few HTML tags: cut short and escaped, so it shows as typed."""
    return [html.escape(t if len(t) <= limit else t[: limit - 1] + "…") for t in texts]
