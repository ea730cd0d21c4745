"""The Evaluate page's depth sweep: the depths a person asks for, and the curve of an evaluation at several depths
(analysis/evaluation_runs.depth_curve): nDCG@10 after reranking against K beside the first stage's recall at K (the
ceiling no reranker passes), and the measured seconds per query below. No Streamlit here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reranker.analysis.evaluation_runs import WITHIN, DepthPoint, depth_curve, suggested_depth
from reranker.core.failures import BadRequest
from reranker.workbench.charts import DEEP_BLUE

RUN_COLORS = (DEEP_BLUE, "#e07b00", "#6a3d9a")
CEILING_GREY = "#777777"
MEASURE = "nDCG@10"


def parse_depths(text: str, top_k: int) -> list[int]:
    """`top_k` then the depths typed ("10,20,50"; spaces allowed), each once; BadRequest naming what to type."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    try:
        extra = [int(part) for part in parts]
    except ValueError:
        raise BadRequest(f"The depths {text!r} are not whole numbers: type depths separated by commas, e.g. "
                         "10,20,50") from None
    if any(k < 1 for k in extra):
        raise BadRequest("Every depth must be at least 1 (e.g. 10,20,50)")
    return list(dict.fromkeys([top_k, *extra]))


def run_curves(document: Mapping, names: Sequence[str]) -> dict[str, list[DepthPoint]]:
    """Each run's depth curve (run name -> points, shallowest first), the runs as the page names them."""
    return {name: depth_curve(document, run["model"], run["instruction"], MEASURE)
            for name, run in zip(names, document["instructions"])}


def suggestion_text(curves: Mapping[str, Sequence[DepthPoint]]) -> str:
    """The suggested K of each run, in words."""
    said = []
    for name, points in curves.items():
        if points:
            best = max(points, key=lambda p: (p.after, -p.top_k))
            said.append(f"run {name}: K = {suggested_depth(points)} (the best, {best.after:.4f}, at K = "
                        f"{best.top_k})")
    return (f"Suggested K, the smallest within {WITHIN * 100:g} point of the best {MEASURE}: " + "; ".join(said)
            + ".")


def depth_figure(curves: Mapping[str, Sequence[DepthPoint]]) -> go.Figure:
    """Above: each run's nDCG@10 against K, the first stage's recall at K (the ceiling) dashed, each run's suggested
    K marked. Below: each run's measured seconds per query (absent where pairs came from the judgement store)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.12)
    ceiling = next((points for points in curves.values() if points), [])
    fig.add_trace(go.Scatter(x=[p.top_k for p in ceiling], y=[p.first_stage_recall for p in ceiling],
                             name="first stage R@K (ceiling)", mode="lines+markers",
                             line={"color": CEILING_GREY, "dash": "dash", "width": 2},
                             hovertemplate="K %{x}: recall %{y:.4f}<extra>ceiling</extra>"), row=1, col=1)
    for (name, points), color in zip(curves.items(), RUN_COLORS):
        ks = [p.top_k for p in points]
        fig.add_trace(go.Scatter(x=ks, y=[p.after for p in points], name=f"run {name}: {MEASURE}",
                                 mode="lines+markers", line={"color": color, "width": 2}, legendgroup=name,
                                 hovertemplate=f"K %{{x}}: {MEASURE} %{{y:.4f}}<extra>run {name}</extra>"),
                      row=1, col=1)
        suggested = suggested_depth(points)
        at = next((p for p in points if p.top_k == suggested), None)
        if at is not None:
            fig.add_trace(go.Scatter(x=[at.top_k], y=[at.after], mode="markers", showlegend=False,
                                     marker={"symbol": "star", "size": 14, "color": color}, legendgroup=name,
                                     hovertemplate=f"suggested K %{{x}}<extra>run {name}</extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=ks, y=[p.seconds_per_query for p in points], name=f"run {name}: s/query",
                                 mode="lines+markers", line={"color": color, "width": 1.5, "dash": "dot"},
                                 legendgroup=name, showlegend=False,
                                 hovertemplate="K %{x}: %{y:.3g} s per query<extra>run " + name + "</extra>"),
                      row=2, col=1)
    ks = sorted({p.top_k for points in curves.values() for p in points})
    fig.update_xaxes(type="log" if ks and ks[-1] / ks[0] >= 8 else "linear", tickvals=ks, row=1, col=1)
    fig.update_xaxes(title_text="K: documents reranked per query", type="log" if ks and ks[-1] / ks[0] >= 8
                     else "linear", tickvals=ks, row=2, col=1)
    if not any(p.seconds_per_query is not None for points in curves.values() for p in points):
        fig.add_annotation(text="no timings: the pairs came from the judgement store", showarrow=False,
                           xref="x2 domain", yref="y2 domain", x=0.5, y=0.5, font={"color": CEILING_GREY})
    fig.update_yaxes(title_text=f"{MEASURE} · R@K", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="s / query", rangemode="tozero", row=2, col=1)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10}, height=440,
                      legend={"orientation": "h", "y": 1.14})
    return fig


def depth_table(curves: Mapping[str, Sequence[DepthPoint]]) -> pd.DataFrame:
    """One row per run and K: the measure, the ceiling, the seconds per query."""
    return pd.DataFrame([{"run": name, "K": p.top_k, MEASURE: round(p.after, 4),
                          "first stage R@K": round(p.first_stage_recall, 4),
                          "s / query": None if p.seconds_per_query is None else round(p.seconds_per_query, 4)}
                         for name, points in curves.items() for p in points])
