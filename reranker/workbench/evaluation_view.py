"""What the Evaluate page shows of an evaluation: the before/after table with significance, each query's win or loss,
the scores of relevant and other documents, the threshold finder, and the exports. No Streamlit here.

Uploads become a BEIR folder here too: files recognised by name (or a zip of a folder) and saved under their BEIR
names, the names people gave them kept to word the errors.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path, PurePosixPath

import pandas as pd
import plotly.graph_objects as go

from reranker.analysis.evaluation import Reranked, ThresholdRow, compare
from reranker.core.ranking import Judgement
from reranker.formats.retrieval import Qrels, Run
from reranker.formats.tables import safe_csv_bytes
from reranker.workbench.charts import CLIFF_RED, DEEP_BLUE, plain_labels

GREEN = "#0b6e4f"
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""A zip or file of the Evaluate page may be this big (the corpus is read as a stream)."""


@dataclass
class EvaluationShown:
    """One Evaluate press: METRICS.json's document and what the views need beside it."""

    document: dict
    first: Run
    reranked: list[Reranked]
    qrels: Qrels
    queries: dict[str, str]
    texts: dict[str, str]
    names: list[str] = field(default_factory=list)
    """A short name per run: "A", "B", ..."""
    asked: str = ""
    """What was evaluated (the data, K, each run's model and instruction), to tell when the page asks another."""
    first_made_here: bool = False
    """The first stage was made on the page (BM25, dense, hybrid), not read from a run: it is offered to download."""


FORMAT = "qwen-ranker-pro evaluation"


def evaluation_json(shown: EvaluationShown) -> str:
    """An Evaluate result as JSON, for the page's history (workbench.drafts): a reload shows it without scoring."""
    return json.dumps({"format": FORMAT, "document": shown.document, "first": shown.first, "qrels": shown.qrels,
                       "queries": shown.queries, "texts": shown.texts, "names": shown.names, "asked": shown.asked,
                       "first_made_here": shown.first_made_here,
                       "reranked": [{"instruction": r.instruction, "model": r.model, "run": r.run,
                                     "per_query": r.per_query,
                                     "judged": {q: {d: [j.score, j.logit, j.tokens, j.truncated]
                                                    for d, j in docs.items()} for q, docs in r.judged.items()}}
                                    for r in shown.reranked]}, ensure_ascii=False)


def evaluation_from_json(data: str) -> EvaluationShown:
    """An Evaluate result read back; ValueError when it is not one."""
    body = json.loads(data)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ValueError("this is not an evaluation of this version of the workbench")
    try:
        reranked = [Reranked(r["instruction"], {q: [(d, s) for d, s in ranked] for q, ranked in r["run"].items()},
                             {q: {d: Judgement(*j) for d, j in docs.items()} for q, docs in r["judged"].items()},
                             r["per_query"], r["model"]) for r in body["reranked"]]
        first = {q: [(d, s) for d, s in ranked] for q, ranked in body["first"].items()}
        return EvaluationShown(body["document"], first, reranked, body["qrels"], body["queries"], body["texts"],
                               body["names"], body.get("asked", ""), bool(body.get("first_made_here")))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"the evaluation is incomplete or damaged ({type(e).__name__}: {e})") from None


# Uploads.

def role_of(name: str) -> str | None:
    """Which BEIR file an uploaded file is, by its name: corpus, queries, qrels or run; None when it cannot be told."""
    lower = PurePosixPath(name).name.lower()
    if lower.endswith(".trec") or lower.startswith("run"):
        return "run"
    if "corpus" in lower:
        return "corpus"
    if "quer" in lower or "topic" in lower:
        return "queries"
    if "qrel" in lower or lower in ("test.tsv", "dev.tsv", "train.tsv"):
        return "qrels"
    return None


SAVED_AS = {"corpus": "corpus.jsonl", "queries": "queries.jsonl", "qrels": "qrels/test.tsv", "run": "run.trec"}


def save_uploads(files: Sequence[tuple[str, bytes]], folder: Path) -> dict[str, str]:
    """The uploaded files (a zip's members too) saved into `folder` under their BEIR names; returns the BEIR name ->
    the name the person gave, for the files found. ValueError for a file that cannot be told or is too big."""
    found: dict[str, str] = {}
    for name, data in files:
        if len(data) > MAX_UPLOAD_BYTES:
            raise ValueError(f"{name} is {len(data) / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
        members = _zip_members(name, data) if name.lower().endswith(".zip") else [(name, data)]
        for member, content in members:
            role = role_of(member)
            if role is None:
                if name.lower().endswith(".zip"):
                    continue
                raise ValueError(f"{name}: not one of a BEIR folder's files (corpus.jsonl, queries.jsonl, "
                                 "qrels/test.tsv) nor a run (.trec)")
            target = folder / SAVED_AS[role]
            if role == "queries" and not member.lower().endswith(".jsonl"):
                target = folder / "queries.tsv"
                (folder / "queries.jsonl").unlink(missing_ok=True)
            elif role == "queries":
                (folder / "queries.tsv").unlink(missing_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            found[target.relative_to(folder).as_posix()] = member
    return found


def _zip_members(name: str, data: bytes) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ValueError(f"{name} is not a zip file that can be read") from None
    members = [info for info in archive.infolist() if not info.is_dir() and not PurePosixPath(info.filename)
               .name.startswith(".")]
    if sum(info.file_size for info in members) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{name} holds over {MAX_UPLOAD_BYTES // 2**20} MB")
    return [(info.filename, archive.read(info)) for info in members]


def in_their_words(message: str, folder: Path, names: Mapping[str, str]) -> str:
    """An error about a saved file, naming the file the person uploaded."""
    for saved, given in sorted(names.items(), key=lambda item: -len(item[0])):
        message = message.replace(str(folder / saved), given)
    return message.replace(f"{folder}/", "")


# Tables.

def comparison_table(document: Mapping, names: Sequence[str]) -> pd.DataFrame:
    """One row per measure: the first stage, then each run's figure with its change and p-value; ★ where the change
    is significant at 0.05."""
    rows = []
    for measure, before in document["before"].items():
        row: dict[str, object] = {"measure": measure, "first stage": round(before, 4)}
        for name, run in zip(names, document["instructions"]):
            test = run["significance"][measure]
            star = " ★" if test["significant_at_0.05"] else ""
            p = test["p_value"]
            row[f"run {name}"] = f"{run['after'][measure]:.4f} ({test['after_minus_before']:+.4f}){star}"
            row[f"p {name}"] = "n/a" if p is None else f"{p:.3g}"
        rows.append(row)
    return pd.DataFrame(rows)


def runs_compared_table(reranked: Sequence[Reranked], names: Sequence[str]) -> pd.DataFrame:
    """Each pair of runs against each other, per measure: their means, the difference (second − first) and the
    paired t-test's p-value over the queries; ★ where the difference is significant at 0.05."""
    rows = []
    for (a_name, a), (b_name, b) in combinations(zip(names, reranked), 2):
        for measure, test in compare(a.per_query, b.per_query).items():
            star = " ★" if test.significant else ""
            rows.append({"runs": f"{b_name} vs {a_name}", "measure": measure,
                         "means": f"{a_name} {test.before:.4f} → {b_name} {test.after:.4f}",
                         "difference": f"{test.after - test.before:+.4f}{star}",
                         "p": "n/a" if test.p_value is None else f"{test.p_value:.3g}"})
    return pd.DataFrame(rows)


def metrics_csv(document: Mapping, names: Sequence[str]) -> bytes:
    """The figures as a spreadsheet: one row per run and measure."""
    rows = [{"run": name, "model": run["model"], "instruction": run["instruction"], "measure": measure,
             "first stage": document["before"][measure], "reranked": run["after"][measure],
             "change": test["after_minus_before"], "p_value": test["p_value"],
             "significant_at_0.05": test["significant_at_0.05"]}
            for name, run in zip(names, document["instructions"])
            for measure, test in run["significance"].items()]
    return safe_csv_bytes(pd.DataFrame(rows))


def query_rankings(shown: EvaluationShown, run: Reranked, qid: str, depth: int) -> pd.DataFrame:
    """A query's top `depth` before and after, side by side, with each document's label and the model's score."""
    before = shown.first[qid][:depth]
    after = run.run[qid][:depth]
    labels = shown.qrels.get(qid, {})

    def judged(docid: str) -> Judgement | None:
        return run.judged.get(qid, {}).get(docid)

    rows = []
    for n in range(max(len(before), len(after))):
        row: dict[str, object] = {"rank": n + 1}
        for side, ranked in (("before", before), ("after", after)):
            docid = ranked[n][0] if n < len(ranked) else None
            row[f"{side}: document"] = shown.texts.get(docid, docid or "")
            row[f"{side}: label"] = labels.get(docid, 0) if docid else None
        verdict = judged(after[n][0]) if n < len(after) else None
        row["after: score"] = verdict.score if verdict is not None else None
        rows.append(row)
    return pd.DataFrame(rows)


def threshold_frame(rows: Sequence[ThresholdRow]) -> pd.DataFrame:
    return pd.DataFrame([{"P(yes) ≥": r.threshold, "log-odds ≥": r.logit, "precision": r.precision,
                          "recall": r.recall, "F1": r.f1} for r in rows])


def threshold_json(run: Mapping, chosen: ThresholdRow | None, target: float) -> str:
    """The threshold a person chose, to use in their pipeline: P(yes) and log-odds, and what it gave here."""
    body = {"model": run["model"], "instruction": run["instruction"], "target_precision": target,
            "best_f1": run["threshold"]["best_f1"]}
    if chosen is not None:
        body["for_target_precision"] = {"score": chosen.threshold, "logit": _finite(chosen.logit),
                                        "precision": chosen.precision, "recall": chosen.recall, "f1": chosen.f1}
    return json.dumps(body, ensure_ascii=False, indent=1)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# Figures.

def wins_losses_figure(before: Mapping[str, float], after: Mapping[str, float], measure: str,
                       queries: Mapping[str, str]) -> go.Figure:
    """Each query's change of `measure`, sorted: gains green, losses red."""
    common = sorted(set(before) & set(after), key=lambda q: (after[q] - before[q], q))
    changes = [after[q] - before[q] for q in common]
    fig = go.Figure(go.Bar(
        x=list(range(1, len(common) + 1)), y=changes, marker_color=[GREEN if c > 0 else CLIFF_RED if c < 0 else
                                                                     "#999999" for c in changes],
        hovertext=plain_labels([f"{q}: {queries.get(q, '')}" for q in common]),
        hovertemplate=f"%{{hovertext}}<br>{measure} change %{{y:+.3f}}<extra></extra>"))
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10}, height=320, showlegend=False,
                      xaxis={"title": "queries, worst change first", "showticklabels": False},
                      yaxis={"title": f"{measure}: reranked − first stage", "zeroline": True})
    return fig


def score_distribution_figure(judged: Mapping[str, Mapping[str, Judgement]], qrels: Qrels) -> go.Figure:
    """How the model scores relevant documents (label above 0) and the others, in log-odds."""
    relevant, other = [], []
    for qid, docs in judged.items():
        for docid, j in docs.items():
            (relevant if qrels.get(qid, {}).get(docid, 0) > 0 else other).append(j.logit)
    bins = shared_bins([*relevant, *other])
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=other, name=f"not relevant ({_pairs(len(other))})", marker_color="#999999",
                               opacity=0.6, xbins=bins, autobinx=False))
    fig.add_trace(go.Histogram(x=relevant, name=f"relevant ({_pairs(len(relevant))})", marker_color=DEEP_BLUE,
                               opacity=0.7, xbins=bins, autobinx=False))
    fig.update_layout(barmode="overlay", margin={"l": 10, "r": 10, "t": 30, "b": 10}, height=300,
                      xaxis={"title": f"log-odds of yes (bins of {bins['size']:.3g})"},
                      yaxis={"title": "pairs in the bin (count)"},
                      legend={"orientation": "h", "y": 1.12})
    return fig


def _pairs(count: int) -> str:
    return f"{count:,} pair{'' if count == 1 else 's'}"


def shared_bins(values: Sequence[float], count: int = 30) -> dict[str, float]:
    """One set of histogram bins for every group of `values` (so a bar's height compares across groups): about
    `count` bins of a round width over their range."""
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    raw = max(high - low, 1.0) / count
    step = 10 ** math.floor(math.log10(raw))
    size = next(m * step for m in (1, 2, 5, 10) if m * step >= raw)
    start = math.floor(low / size) * size
    return {"start": start, "end": start + size * (math.floor((high - start) / size) + 1), "size": size}


def threshold_figure(rows: Sequence[ThresholdRow], chosen: ThresholdRow | None) -> go.Figure:
    """Precision, recall and F1 of "score ≥ t" against t (in log-odds), the chosen t marked."""
    x = [r.logit for r in rows]
    fig = go.Figure()
    for name, values, color in (("precision", [r.precision for r in rows], DEEP_BLUE),
                                ("recall", [r.recall for r in rows], GREEN),
                                ("F1", [r.f1 for r in rows], CLIFF_RED)):
        fig.add_trace(go.Scatter(x=x, y=values, mode="lines", name=name, line={"color": color, "width": 2}))
    if chosen is not None and math.isfinite(chosen.logit):
        fig.add_vline(x=chosen.logit, line_dash="dot", line_color="#444444")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10}, height=300, yaxis={"range": [0, 1.02]},
                      xaxis={"title": "threshold, log-odds of yes"}, legend={"orientation": "h", "y": 1.12})
    return fig
