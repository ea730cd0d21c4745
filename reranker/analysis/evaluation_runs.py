"""METRICS.json's comparisons across runs: every model x instruction x depth reranking of one first stage (`runs`),
the paired tests between every two runs at the same depth (`comparisons`), and per depth the first stage's recall
(the ceiling no reranker passes), the pairs and the measured seconds per query (`depths`); and the depth curve a
page or the command line reads from it (`depth_curve`, `suggested_depth`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from reranker.analysis.evaluation import (
    PRECISION_TARGET,
    Judge,
    PerQuery,
    Reranked,
    best_f1,
    compare,
    for_precision,
    means,
    measure,
    parse_measures,
    rerank_run,
    threshold_row,
    threshold_table,
)
from reranker.analysis.judgement_store import JudgementStore
from reranker.core.backend import RerankBackend
from reranker.core.failures import BadRequest
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import Progress
from reranker.formats.retrieval import Qrels, Run

WITHIN = 0.01
"""How far below the best nDCG@10 the suggested depth may be: one point."""


def _tests(before: PerQuery, after: PerQuery) -> dict[str, dict]:
    return {name: {"test": "paired t-test, two-sided", "p_value": c.p_value, "after_minus_before": c.after - c.before,
                   "significant_at_0.05": c.significant} for name, c in compare(before, after).items()}


def _differences(first: PerQuery, other: PerQuery) -> dict[str, dict]:
    return {name: {"test": "paired t-test, two-sided", "p_value": c.p_value, "difference": c.after - c.before,
                   "significant_at_0.05": c.significant} for name, c in compare(first, other).items()}


def run_entry(result: Reranked, before: PerQuery, first_at_depth: Reranked | None, qrels: Qrels, model: str,
              top_k: int) -> dict:
    """One run's figures: its means, its test against the first stage (`significance`) and against the first run
    at its depth (`against_first_instruction`, None for that run itself), per-query values and thresholds."""
    rows = threshold_table(result.judged, qrels)
    return {
        "model": result.model or model,
        "instruction": resolve_instruction(result.instruction),
        "top_k": result.top_k or top_k,
        "after": means(result.per_query),
        "significance": _tests(before, result.per_query),
        "against_first_instruction": None if first_at_depth is None or first_at_depth is result
        else _differences(first_at_depth.per_query, result.per_query),
        "seconds_per_query": result.seconds_per_query,
        "per_query": result.per_query,
        "threshold": {"best_f1": threshold_row(best_f1(rows)),
                      f"precision_{PRECISION_TARGET:g}": threshold_row(for_precision(rows, PRECISION_TARGET))},
    }


def runs_section(reranked: Sequence[Reranked], before: PerQuery, qrels: Qrels, model: str, top_k: int) -> list[dict]:
    """Every run's entry, in the order run."""
    firsts: dict[int, Reranked] = {}
    for result in reranked:
        firsts.setdefault(result.top_k or top_k, result)
    return [run_entry(r, before, firsts[r.top_k or top_k], qrels, model, top_k) for r in reranked]


def comparisons_section(runs: Sequence[Mapping]) -> list[dict]:
    """A paired test of every two runs at the same depth (the second's minus the first's)."""
    out = []
    for (a, one), (b, other) in combinations(enumerate(runs), 2):
        if one["top_k"] != other["top_k"]:
            continue
        out.append({"top_k": one["top_k"], "runs": [a, b],
                    "a": {"model": one["model"], "instruction": one["instruction"]},
                    "b": {"model": other["model"], "instruction": other["instruction"]},
                    "measures": _differences(one["per_query"], other["per_query"])})
    return out


def depths_section(qrels: Qrels, first: Run, topics: Sequence[str], runs: Sequence[Mapping]) -> list[dict]:
    """Per depth K (in the order the runs first reach it): the first stage's R@K over the evaluated queries, the
    documents reranked per query, and the first run's measured seconds per query at K."""
    out = []
    for k in dict.fromkeys(run["top_k"] for run in runs):
        recall = means(measure(qrels, first, parse_measures([f"R@{k}"])[-1:], topics)) if topics else {}
        pairs = sum(min(len(first.get(q, [])), k) for q in topics)
        seconds = next(run["seconds_per_query"] for run in runs if run["top_k"] == k)
        out.append({"top_k": k, "first_stage_recall": recall.get(f"R@{k}", 0.0),
                    "pairs_per_query": pairs / len(topics) if topics else 0.0, "seconds_per_query": seconds})
    return out


@dataclass(frozen=True)
class DepthPoint:
    """One depth of a model and instruction: a measure after reranking, the ceiling, the cost."""

    top_k: int
    after: float
    first_stage_recall: float
    seconds_per_query: float | None


def depth_curve(document: Mapping, model: str | None = None, instruction: str | None = None,
                measure_name: str = "nDCG@10") -> list[DepthPoint]:
    """The depth curve of METRICS.json's runs of `model` and `instruction` (None: the first run's), shallowest
    first: what a page draws (the measure against K, the first stage's recall at K, seconds per query)."""
    runs = document.get("runs") or []
    if not runs:
        return []
    model = runs[0]["model"] if model is None else model
    instruction = runs[0]["instruction"] if instruction is None else resolve_instruction(instruction)
    ceilings = {d["top_k"]: d for d in document.get("depths") or []}
    points = [DepthPoint(r["top_k"], r["after"][measure_name], ceilings.get(r["top_k"], {}).get("first_stage_recall",
                                                                                                 0.0),
                         r["seconds_per_query"])
              for r in runs if r["model"] == model and r["instruction"] == instruction]
    return sorted(points, key=lambda p: p.top_k)


def suggested_depth(points: Sequence[DepthPoint], within: float = WITHIN) -> int | None:
    """The smallest K whose measure is within `within` (a point of nDCG@10) of the best K's."""
    if not points:
        return None
    best = max(p.after for p in points)
    return min(p.top_k for p in points if p.after >= best - within - 1e-12)


def suggestions_section(document: Mapping) -> list[dict]:
    """Per model and instruction with more than one depth: the suggested K, and the best one."""
    out = []
    for model, instruction in dict.fromkeys((r["model"], r["instruction"]) for r in document.get("runs") or []):
        points = depth_curve(document, model, instruction)
        if len(points) > 1:
            best = max(points, key=lambda p: (p.after, -p.top_k))
            out.append({"model": model, "instruction": instruction, "top_k": suggested_depth(points),
                        "best_top_k": best.top_k, "best_nDCG@10": best.after, "within": WITHIN})
    return out


def check_depths(first: Run, depths: Sequence[int], where: str, asked: str = "--top-k") -> None:
    """BadRequest when a depth asked for is deeper than every query's ranking of the first stage (`where`)."""
    longest = max((len(ranked) for ranked in first.values()), default=0)
    if max(depths) > longest:
        raise BadRequest(f"{asked} {max(depths)} is deeper than the first stage's run: it ranks at most {longest:,} "
                         f"documents for a query ({where}); give depths up to {longest:,}")


def pairs_to_depth(first: Run, depth: int) -> int:
    return sum(min(len(r), depth) for r in first.values())


def rerank_at_depths(backend: RerankBackend, store: JudgementStore, judge: Judge, first: Run,
                     queries: Mapping[str, str], texts: Mapping[str, str], depths: Sequence[int],
                     instruction: str | None, progress: Progress | None = None,
                     report: Callable[[str], None] = lambda line: None, passage_tokens: int | None = None,
                     max_passages: int | None = None) -> list[Reranked]:
    """The run reranked at each depth, in `depths`' order: the evaluate command's and the Evaluate page's depth
    sweep. Scored shallowest first, each depth adding only its new pairs (`store`, which `judge` scores through,
    answers the rest), so every pair is scored once and each depth's seconds are measured: the time of its pairs,
    summed (None when some of them came from the store)."""
    found: dict[int, Reranked] = {}
    seconds, scored_all, done = 0.0, 0, 0
    for k in sorted(depths):
        started, scored_before = time.perf_counter(), store.pairs_scored
        result = rerank_run(backend, first, queries, texts, k, instruction, judge, progress, passage_tokens,
                            max_passages)
        seconds += time.perf_counter() - started
        scored, new = store.pairs_scored - scored_before, pairs_to_depth(first, k) - done
        done, scored_all = done + new, scored_all + scored
        result.seconds_per_query = seconds / len(first) if first and scored_all == done else None
        found[k] = result
        report(f"instruction {resolve_instruction(instruction)!r}, top {k}: {scored:,} pairs scored now "
               f"({new - scored:,} from the store) in {time.perf_counter() - started:.1f} s")
    return [found[k] for k in depths]
