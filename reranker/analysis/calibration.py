"""Fitting a calibration: a monotone map from the model's log-odds to the probability that a document is relevant,
learnt from labelled (query, document) pairs (scikit-learn's logistic regression for Platt, its isotonic regression),
and how well a probability is calibrated: expected calibration error, Brier score, and the reliability diagram's bins.

The before/after figures are cross-validated by query (GroupKFold): each pair's calibrated probability comes from a
map fitted without any pair of its query, so a map cannot look good by remembering the queries it was fitted on. The
map written out is then fitted on every pair. The map itself is core/calibrated.Calibration (plain numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from reranker.core.calibrated import METHODS, Calibration
from reranker.core.failures import BadRequest
from reranker.core.ranking import Judgement
from reranker.formats.retrieval import Qrels

BINS = 10
"""Equal-width probability bins of the ECE and the reliability diagram."""
FOLDS = 5
"""Cross-validation folds (fewer when there are fewer queries)."""


@dataclass(frozen=True)
class LabelledPairs:
    """The model's log-odds of each judged pair, whether it is relevant (a label above 0; unlabelled: not), and its
    query."""

    logits: list[float]
    relevant: list[bool]
    queries: list[str]


def labelled_pairs(judged: Mapping[str, Mapping[str, Judgement]], qrels: Qrels) -> LabelledPairs:
    """Every pair the model judged (query id -> document id -> judgement), read as the threshold finder reads them."""
    rows = [(j.logit, qrels.get(qid, {}).get(docid, 0) > 0, qid)
            for qid, docs in judged.items() for docid, j in docs.items()]
    return LabelledPairs([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def fit_map(method: str, logits: Sequence[float], relevant: Sequence[bool]) -> Calibration:
    """The monotone map of `method` (platt or isotonic) fitted on these pairs."""
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(relevant, dtype=np.int64)
    if method == "platt":
        model = LogisticRegression(C=np.inf).fit(x.reshape(-1, 1), y)
        return Calibration("platt", {"slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])})
    if method == "isotonic":
        model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(x, y)
        return Calibration("isotonic", {"logits": [float(v) for v in model.X_thresholds_],
                                        "probabilities": [float(v) for v in model.y_thresholds_]})
    raise BadRequest(f"unknown calibration method {method!r}: use {' or '.join(METHODS)}")


def model_probability(logit: float) -> float:
    """The model's own P(yes), sigmoid(logit): what a calibration is measured against."""
    return 1.0 / (1.0 + math.exp(-logit)) if logit >= 0 else math.exp(logit) / (1.0 + math.exp(logit))


def expected_calibration_error(probabilities: Sequence[float], relevant: Sequence[bool], bins: int = BINS) -> float:
    """Sum over equal-width bins of (pairs in the bin / all pairs) * |mean probability - fraction relevant|."""
    total = len(probabilities)
    return sum(b["pairs"] / total * abs(b["mean_probability"] - b["fraction_relevant"])
               for b in reliability_bins(probabilities, relevant, bins) if b["pairs"]) if total else 0.0


def brier_score(probabilities: Sequence[float], relevant: Sequence[bool]) -> float:
    """Mean squared difference between the probability and the outcome (1 relevant, 0 not)."""
    return float(np.mean([(p - float(r)) ** 2 for p, r in zip(probabilities, relevant)])) if probabilities else 0.0


def reliability_bins(probabilities: Sequence[float], relevant: Sequence[bool], bins: int = BINS) -> list[dict]:
    """The reliability diagram's data: for each equal-width bin of probability, its bounds, how many pairs fell in it,
    their mean probability and the fraction of them relevant (None for an empty bin). A calibrated model's bins lie on
    the diagonal."""
    out = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(p, r) for p, r in zip(probabilities, relevant) if low <= p < high or (b == bins - 1 and p == 1.0)]
        out.append({"low": low, "high": high, "pairs": len(inside),
                    "mean_probability": sum(p for p, _ in inside) / len(inside) if inside else None,
                    "fraction_relevant": sum(r for _, r in inside) / len(inside) if inside else None})
    return out


def cross_validated(method: str, pairs: LabelledPairs, folds: int = FOLDS) -> list[float]:
    """Each pair's calibrated probability from a map fitted on the other queries' pairs only."""
    queries = sorted(set(pairs.queries))
    folds = min(folds, len(queries))
    out = [0.0] * len(pairs.logits)
    groups = np.asarray([queries.index(q) for q in pairs.queries])
    for train, test in GroupKFold(n_splits=folds).split(pairs.logits, groups=groups):
        train_relevant = [pairs.relevant[i] for i in train]
        if all(train_relevant) or not any(train_relevant):  # one class: the best map is that constant
            constant = float(train_relevant[0])
            for i in test:
                out[i] = constant
            continue
        fitted = fit_map(method, [pairs.logits[i] for i in train], train_relevant)
        for i in test:
            out[i] = fitted.probability(pairs.logits[i])
    return out


def check_fittable(pairs: LabelledPairs) -> None:
    """BadRequest saying what to add when these pairs cannot calibrate anything."""
    queries = len(set(pairs.queries))
    if queries < 2:
        raise BadRequest(f"{queries} labelled quer{'y' if queries == 1 else 'ies'} judged; a calibration is "
                         "cross-validated by query and needs at least 2 (20 or more for a map worth using): label "
                         "more queries")
    relevant = sum(pairs.relevant)
    if relevant == 0 or relevant == len(pairs.relevant):
        kind = "relevant" if relevant == 0 else "non-relevant"
        raise BadRequest(f"none of the {len(pairs.relevant):,} judged pairs is {kind}; a calibration needs both: "
                         f"add {kind} labels (or rerank more documents per query, --top-k)")


def calibration_document(method: str, pairs: LabelledPairs, folds: int = FOLDS) -> dict:
    """CAL.json: `method`, `map` (fitted on every pair), `ece_before`, `ece_after`, `brier_before`, `brier_after`
    (after: cross-validated by query), the reliability diagram's bins before and after, and how many pairs, queries
    and relevant pairs it was fitted on."""
    check_fittable(pairs)
    before = [model_probability(x) for x in pairs.logits]
    after = cross_validated(method, pairs, folds)
    fitted = fit_map(method, pairs.logits, pairs.relevant)
    return {**fitted.document(),
            "ece_before": expected_calibration_error(before, pairs.relevant),
            "ece_after": expected_calibration_error(after, pairs.relevant),
            "brier_before": brier_score(before, pairs.relevant), "brier_after": brier_score(after, pairs.relevant),
            "cross_validation": f"GroupKFold by query, {min(folds, len(set(pairs.queries)))} folds",
            "pairs": len(pairs.logits), "queries": len(set(pairs.queries)), "relevant_pairs": sum(pairs.relevant),
            "reliability": {"bins": BINS, "before": reliability_bins(before, pairs.relevant),
                            "after": reliability_bins(after, pairs.relevant)}}
