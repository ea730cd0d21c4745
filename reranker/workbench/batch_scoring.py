"""Scoring an uploaded table of (query, document) pairs in chunks, with progress and an ETA."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from reranker.backend import RerankBackend
from reranker.csv_io import PairRow, group_pairs
from reranker.progress import duration_text, seconds_left
from reranker.prompt import resolve_instruction
from reranker.ranking import Query, rank_judgements
from reranker.ranking_metrics import label_metrics, mean
from reranker.workbench.score_cache import ScoreCache

Group = tuple[Query, list[int]]
RESULT_COLUMNS = ["query", "instruction", "rank", "score", "log-odds", "label", "tokens", "truncated", "document",
                  "row"]


@dataclass(frozen=True)
class BatchProgress:
    done: int
    total: int
    elapsed: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far; None before the first pair is done."""
        return seconds_left(self.done, self.total, self.elapsed)

    def text(self) -> str:
        eta = self.eta_seconds
        left = "estimating time left" if eta is None else f"about {duration_text(eta)} left"
        return f"{self.done:,} / {self.total:,} pairs · {duration_text(self.elapsed)} elapsed · {left}"


def chunk_groups(groups: Sequence[Group], max_pairs: int) -> list[list[Group]]:
    """Consecutive groups packed into chunks of about max_pairs pairs; a bigger query is a chunk alone."""
    chunks: list[list[Group]] = []
    current: list[Group] = []
    size = 0
    for group in groups:
        n = len(group[0].documents)
        if current and size + n > max_pairs:
            chunks.append(current)
            current, size = [], 0
        current.append(group)
        size += n
    if current:
        chunks.append(current)
    return chunks


def run_batch(cache: ScoreCache, backend: RerankBackend, rows: Sequence[PairRow], instruction: str | None = None,
              on_progress: Callable[[BatchProgress], None] | None = None, chunk_pairs: int = 128) -> pd.DataFrame:
    """Score every row; rows without an instruction of their own get `instruction` (blank: the default).

    Returns one row per pair, grouped by query in first-seen order, best first within a query.
    """
    groups = [(replace(q, instruction=resolve_instruction(q.instruction or instruction)), numbers)
              for q, numbers in group_pairs(list(rows))]
    total = sum(len(q.documents) for q, _ in groups)
    started = time.perf_counter()
    done_before = 0
    judged: list[list] = []

    def report(done: int, _total: int) -> None:
        if on_progress is not None:
            on_progress(BatchProgress(done_before + done, total, time.perf_counter() - started))

    report(0, total)
    for chunk in chunk_groups(groups, chunk_pairs):
        judged.extend(cache.judge_many(backend, [q for q, _ in chunk], report))
        done_before += sum(len(q.documents) for q, _ in chunk)
        report(0, total)
    by_row = {r.row: r for r in rows}
    records = []
    for (q, numbers), judgements in zip(groups, judged):
        for d in rank_judgements(q.documents, judgements):
            source = by_row[numbers[d.index]]
            records.append({"query": q.query, "instruction": q.instruction, **d.record(), "label": source.label,
                            "row": source.row + 1})
    frame = pd.DataFrame(records).rename(columns={"logit": "log-odds"}).reindex(columns=RESULT_COLUMNS)
    if frame["label"].isna().all():
        frame = frame.drop(columns="label")
    return frame


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


def batch_json(results: pd.DataFrame, model: str) -> str:
    """The JSON download: one entry per query with its ranked results."""
    queries = []
    for (query, instruction), group in results.groupby(["query", "instruction"], sort=False):
        items = group.drop(columns=["query", "instruction"]).rename(columns={"log-odds": "logit"})
        queries.append({"query": query, "instruction": instruction,
                        "results": json.loads(items.to_json(orient="records", force_ascii=False))})
    return json.dumps({"model": model, "queries": queries}, ensure_ascii=False, indent=2)

