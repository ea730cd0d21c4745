"""The Verify page's views of a report (REPORT.json, analysis/verification.py): the probe table, and each pair's
score from the reference against the target's. Plain Python: tests reach them without a page."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from reranker.workbench.charts import plain_labels

VERDICT_ICONS = {"exact": ":material/check_circle:", "approximate": ":material/adjust:", "wrong": ":material/cancel:"}
"""Streamlit's icon of each verdict (Material icons: no emoji font needed)."""


def probe_frame(report: dict) -> pd.DataFrame:
    """A row a probe: its verdict, largest |dp|, pairs and what it catches."""
    return pd.DataFrame([{"verdict": p["verdict"], "probe": p["name"],
                          "max |dp|": p["max_abs_diff"], "pairs": len(p["reference"]),
                          "catches": p["catches"] + (f" (refused: {p['refused']})" if p["refused"] else "")}
                         for p in report["probes"]])


def pair_frame(report: dict) -> pd.DataFrame:
    """A row a pair: the probe, the document (shortened), the reference's and the target's P(yes), |dp|."""
    return pd.DataFrame([{"probe": p["name"], "document": document, "reference": reference, "target": target,
                          "|dp|": diff}
                         for p in report["probes"]
                         for document, reference, target, diff in zip(p["documents"], p["reference"], p["target"],
                                                                       p["abs_diff"])])


def measures_frame(report: dict) -> pd.DataFrame:
    """With a dataset: a row a measure, the reference's and the target's mean, the difference and the paired test."""
    return pd.DataFrame([{"measure": name, "reference": m["reference"], "target": m["target"],
                          "target - reference": m["target_minus_reference"], "p": m["p_value"]}
                         for name, m in report["measures"]["measures"].items()])


def agreement_figure(report: dict) -> go.Figure:
    """Each pair's score by the reference (x) against the target's (y), a colour a probe, with the diagonal where a
    right deployment lies."""
    fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": "#9aa5b1", "dash": "dot"},
                                hoverinfo="skip", showlegend=False)])
    for probe in report["probes"]:
        if not probe["reference"]:
            continue
        fig.add_trace(go.Scatter(x=probe["reference"], y=probe["target"], mode="markers", name=probe["name"],
                                 marker={"size": 8}, customdata=plain_labels(probe["documents"]),
                                 hovertemplate="%{customdata}<br>reference %{x:.4f}<br>target %{y:.4f}<extra>"
                                               + probe["name"] + "</extra>"))
    fig.update_layout(xaxis_title='P("yes"), the model (reference)', yaxis_title='P("yes"), the deployment',
                      height=460, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(range=[-0.02, 1.02], constrain="domain")
    fig.update_yaxes(range=[-0.02, 1.02], scaleanchor="x", scaleratio=1)
    return fig


def figures_text(report: dict) -> str:
    """The overall figures in a line."""
    def shown(value: float | None, digits: str = ".3f") -> str:
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, digits)

    return (f"max |dp| {shown(report['max_abs_diff'], '.3g')} · Spearman {shown(report['spearman'])} · Kendall tau "
            f"{shown(report['kendall_tau'])} · top-1 agreement {shown(report['top1_agreement'], '.0%')} · top-10 "
            f"overlap {shown(report['top10_overlap'], '.0%')}")
