"""Scoring an uploaded table of (query, document) pairs, and its metrics against the table's labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd

from reranker.backend import RerankBackend
from reranker.csv_io import PairRow, group_pairs
from reranker.exports import export_frame, export_record
from reranker.prompt import resolve_instruction
from reranker.ranking import rank_judgements
from reranker.ranking_metrics import label_metrics, mean
from reranker.workbench.score_cache import ScoreCache
from reranker.workbench.scoring_steps import ScoringProgress, judge_in_steps


def run_batch(cache: ScoreCache, backend: RerankBackend, rows: Sequence[PairRow], instruction: str | None = None,
              on_progress: Callable[[ScoringProgress], None] | None = None) -> pd.DataFrame:
    """Score every row; rows without an instruction of their own get `instruction` (blank: the default).

    Returns one exported row per pair (reranker.exports), grouped by query in first-seen order, best first within
    a query; `index` is the row's place in the uploaded table, from 0.
    """
    groups = [(replace(q, instruction=resolve_instruction(q.instruction or instruction)), numbers)
              for q, numbers in group_pairs(list(rows))]
    judged = judge_in_steps(cache, backend, [q for q, _ in groups], on_progress)
    by_row = {r.row: r for r in rows}
    records = [export_record(d, q.query, q.instruction, backend.model_name, by_row[numbers[d.index]].label,
                             index=numbers[d.index])
               for (q, numbers), judgements in zip(groups, judged)
               for d in rank_judgements(q.documents, judgements)]
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
