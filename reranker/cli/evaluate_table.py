"""`evaluate`'s figures as people read them: before and after per run, the paired tests between runs, and the depth
sweep with the suggested K."""

from __future__ import annotations

from collections.abc import Mapping

from reranker.analysis.evaluation import coverage_text
from reranker.analysis.evaluation_runs import depth_curve


def table(summary: Mapping) -> str:
    runs = summary.get("runs") or summary["instructions"]
    several = len(summary.get("models") or [summary["model"]]) > 1 or len(summary.get("top_ks") or [1]) > 1
    lines = [f"{coverage_text(summary)}; first stage: {summary['first_stage']}"]
    if not several:
        lines[0] += f"; top {summary['top_k']} reranked by {summary['model']}"
    for run in runs:
        if several:
            lines.append(f"\nmodel: {run['model']}, top {run['top_k']}, instruction: {run['instruction']}")
        else:
            lines.append(f"\ninstruction: {run['instruction']}")
        lines.extend(_before_after(summary, run))
    lines.extend(_comparisons(summary))
    lines.extend(_depths(summary))
    lines.append("\n* significant at 0.05")
    return "\n".join(lines)


def _before_after(summary: Mapping, run: Mapping) -> list[str]:
    lines = [f"{'measure':<10} {'before':>8} {'after':>8} {'change':>8}  p (paired t)"]
    for name, test in run["significance"].items():
        p = test["p_value"]
        mark = " *" if test["significant_at_0.05"] else ""
        lines.append(f"{name:<10} {summary['before'][name]:8.4f} {run['after'][name]:8.4f} "
                     f"{test['after_minus_before']:+8.4f}  {'n/a' if p is None else f'{p:.3g}'}{mark}")
    best = run["threshold"]["best_f1"]
    if best is not None:
        lines.append(f"threshold of best F1: P(yes) >= {best['score']:.4g} (precision {best['precision']:.3f}, "
                     f"recall {best['recall']:.3f}, F1 {best['f1']:.3f})")
    return lines


def _comparisons(summary: Mapping) -> list[str]:
    pairs = summary.get("comparisons") or []
    if not pairs:
        return []
    lines = ["\nbetween runs at the same depth (the second minus the first, paired t-test):"]
    for pair in pairs:
        a, b = pair["a"], pair["b"]
        test = pair["measures"]["nDCG@10"]
        p = test["p_value"]
        lines.append(f"top {pair['top_k']}: {b['model']} [{b['instruction'][:40]}] vs {a['model']} "
                     f"[{a['instruction'][:40]}]: nDCG@10 {test['difference']:+.4f}, p "
                     f"{'n/a' if p is None else f'{p:.3g}'}{' *' if test['significant_at_0.05'] else ''}")
    return lines


def _depths(summary: Mapping) -> list[str]:
    depths = summary.get("depths") or []
    if len(depths) < 2:
        return []
    lines = ["\ndepth sweep (nDCG@10 after reranking; R@K: the first stage's recall at K, the ceiling):"]
    for model, instruction in dict.fromkeys((r["model"], r["instruction"]) for r in summary["runs"]):
        lines.append(f"{model}, instruction {instruction[:60]!r}")
        lines.append(f"{'K':>6} {'nDCG@10':>8} {'R@K':>8} {'s/query':>9}")
        points = depth_curve(summary, model, instruction)
        for point in points:
            seconds = "store" if point.seconds_per_query is None else f"{point.seconds_per_query:.3f}"
            lines.append(f"{point.top_k:>6} {point.after:8.4f} {point.first_stage_recall:8.4f} {seconds:>9}")
        for hint in summary.get("suggested_top_k") or []:
            if hint["model"] == model and hint["instruction"] == instruction:
                lines.append(f"suggested: top {hint['top_k']}, the smallest K within a point of the best nDCG@10 "
                             f"({hint['best_nDCG@10']:.4f} at top {hint['best_top_k']})")
    lines.append("(s/query \"store\": some pairs came from the judgement store, so that depth's time was not measured)")
    return lines
