"""Ranking metrics for judging a ranking against relevance labels (trec_eval's definitions, through ir-measures,
the same the evaluate command reports), and two rankings against each other.

Labels are graded (0 = not relevant, 1, 2, ... = more relevant); a label above 0 counts as relevant. trec_eval
reads whole grades: a fractional label is rounded to the nearest (0.5 up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import ir_measures
from ir_measures import RR, Success, nDCG


def label_metrics(ranked_labels: Sequence[float], k: int) -> dict[str, float]:
    """NDCG@k, MRR (this query's reciprocal rank) and Hit@1 of one ranking, given its documents' labels in ranked
    order (best-ranked first), keyed by their display names. NDCG's gain is the label itself, as trec_eval's
    ndcg_cut has it; 0.0 when nothing is relevant."""
    measures = {f"NDCG@{k}": nDCG @ max(k, 1), "MRR": RR, "Hit@1": Success @ 1}
    if not ranked_labels:
        return dict.fromkeys(measures, 0.0)
    qrels = {"q": {str(n): math.floor(float(label) + 0.5) for n, label in enumerate(ranked_labels)}}
    run = {"q": {str(n): float(len(ranked_labels) - n) for n in range(len(ranked_labels))}}
    found = ir_measures.calc_aggregate(list(measures.values()), qrels, run)
    return {name: float(found.get(measure, 0.0)) for name, measure in measures.items()}


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
