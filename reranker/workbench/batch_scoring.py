"""Scoring an uploaded table of (query, document) pairs, and its metrics against the table's labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd

from reranker.analysis.judgement_store import JudgementStore
from reranker.analysis.ranking_metrics import label_metrics, mean
from reranker.core.backend import RerankBackend
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import queries_of
from reranker.formats.exports import export_frame, export_record
from reranker.formats.tables import PairRow
from reranker.workbench.scoring_steps import ScoringProgress, rank_in_steps


def run_batch(cache: JudgementStore, backend: RerankBackend, rows: Sequence[PairRow], instruction: str | None = None,
              on_progress: Callable[[ScoringProgress], None] | None = None,
              passage_tokens: int | None = None) -> pd.DataFrame:
    """Score every row; rows without an instruction of their own get `instruction` (blank: the default); with
    passage_tokens, each document by its best passage.

    Returns one exported row per pair (reranker.formats.exports), grouped by query in first-seen order, best first
    within a query; `index` is the row's place in the uploaded table, from 0.
    """
    rows = list(rows)
    groups = queries_of((r.query, r.document, resolve_instruction(r.instruction or instruction)) for r in rows)
    queries = [replace(q, passage_tokens=passage_tokens) for q, _ in groups]
    ranked = rank_in_steps(cache, backend, queries, on_progress)
    records = [export_record(d, q.query, q.instruction, backend.model_name, rows[positions[d.index]].label,
                             index=rows[positions[d.index]].row)
               for (q, positions), ranking in zip(groups, ranked) for d in ranking]
    return export_frame(records)


def batch_metrics(results: pd.DataFrame, k: int) -> pd.DataFrame:
    """NDCG@k, MRR and Hit@1 per (query, instruction) with any label; an unlabelled pair counts as 0."""
    if "label" not in results.columns:
        return pd.DataFrame(columns=["query", "instruction", "documents", f"NDCG@{k}", "MRR", "Hit@1"])
    rows = []
    for (query, instruction), group in results.groupby(["query", "instruction"], sort=False):
        if group["label"].isna().all():
            continue
        ranked_labels = group.sort_values("rank")["label"].fillna(0.0).tolist()
        rows.append({"query": query, "instruction": instruction, "documents": len(group),
                     **label_metrics(ranked_labels, k)})
    return pd.DataFrame(rows, columns=["query", "instruction", "documents", f"NDCG@{k}", "MRR", "Hit@1"])


def overall_metrics(per_query: pd.DataFrame) -> dict[str, float]:
    """Each metric's mean over the labelled queries (MRR proper is the mean reciprocal rank)."""
    return {m: mean(per_query[m].tolist()) for m in per_query.columns if m.startswith(("NDCG@", "MRR", "Hit@"))}
