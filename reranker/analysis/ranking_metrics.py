"""Ranking metrics for judging a ranking against relevance labels, and two rankings against each other.

Labels are graded (0 = not relevant, 1, 2, ... = more relevant); a label above 0 counts as relevant.
Functions that take `ranked_labels` want the labels in ranked order, best-ranked document first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def dcg_at_k(ranked_labels: Sequence[float], k: int) -> float:
    """Discounted cumulative gain with exponential gain 2^label - 1 and a log2(rank + 1) discount."""
    return sum((2.0 ** label - 1.0) / math.log2(rank + 1)
               for rank, label in enumerate(ranked_labels[: max(k, 0)], start=1))


def ndcg_at_k(ranked_labels: Sequence[float], k: int) -> float:
    """DCG@k over the DCG@k of the ideal order of the same labels; 0.0 when no document is relevant."""
    ideal = dcg_at_k(sorted(ranked_labels, reverse=True), k)
    return dcg_at_k(ranked_labels, k) / ideal if ideal > 0 else 0.0


def reciprocal_rank(ranked_labels: Sequence[float]) -> float:
    """1 / rank of the first relevant document; 0.0 when none is. Its mean over queries is MRR."""
    for rank, label in enumerate(ranked_labels, start=1):
        if label > 0:
            return 1.0 / rank
    return 0.0


def hit_at_1(ranked_labels: Sequence[float]) -> float:
    """1.0 when the top-ranked document is relevant, else 0.0."""
    return 1.0 if len(ranked_labels) > 0 and ranked_labels[0] > 0 else 0.0


def label_metrics(ranked_labels: Sequence[float], k: int) -> dict[str, float]:
    """NDCG@k, MRR (this query's reciprocal rank) and Hit@1, keyed by their display names."""
    return {f"NDCG@{k}": ndcg_at_k(ranked_labels, k), "MRR": reciprocal_rank(ranked_labels),
            "Hit@1": hit_at_1(ranked_labels)}


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two orderings of the same items: 1 same order, -1 reversed, ~0 unrelated.

    a[i] and b[i] are item i's rank (or score) under each ordering. Ties count as neither agreement
    nor disagreement (tau-b). 1.0 for fewer than two items; 0.0 when one side ties every item.
    """
    if len(a) != len(b):
        raise ValueError(f"kendall_tau needs two orderings of the same items, got {len(a)} and {len(b)} values")
    n = len(a)
    if n < 2:
        return 1.0
    concordant = discordant = ties_a = ties_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0:
                ties_a += 1
            if db == 0:
                ties_b += 1
            if da * db > 0:
                concordant += 1
            elif da * db < 0:
                discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - ties_a) * (pairs - ties_b))
    return (concordant - discordant) / denominator if denominator > 0 else 0.0


def top_k_overlap(order_a: Sequence[int], order_b: Sequence[int], k: int) -> float:
    """Share of the top k items the two orders have in common (1.0 = the same set, in any order).

    order_a and order_b list item ids best first; k larger than the lists means all of them.
    """
    k = min(k, len(order_a), len(order_b))
    if k <= 0:
        return 1.0
    return len(set(order_a[:k]) & set(order_b[:k])) / k


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def metric_text(name: str, value: float, queries: int = 1) -> str:
    """How a metric reads on screen: Hit@1 of one query is yes or no, over several the share of queries with a hit;
    the others with three decimals."""
    if name.startswith("Hit@"):
        return ("yes" if value >= 0.5 else "no") if queries == 1 else f"{value:.0%}"
    return f"{value:.3f}"
