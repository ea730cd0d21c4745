"""Does reranking make a first stage's ranking better, and is the gain real? The first stage's run and the run with
each query's top K reranked, measured against relevance labels with trec_eval's definitions (through ir-measures
over pytrec_eval), each measure's per-query values compared by a paired t-test; and which score threshold separates
relevant documents from the rest.

Reranking keeps trec_eval's reading of the first stage: its top K by score are put in the model's order (ties keep
their first-stage order), the rest stay below in theirs. The written run's scores fall with its ranks (trec_eval
sorts by score, not by the rank column).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ir_measures
from scipy import stats

from reranker.core.backend import RerankBackend
from reranker.core.ranking import Judgement, Progress, Query, rank_judgements
from reranker.formats.retrieval import (
    Dataset,
    DatasetError,
    Qrels,
    Run,
    beir_files,
    read_documents,
    read_qrels,
    read_queries,
    read_run,
)

DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100", "AP")
"""Always measured; `--measures` adds more, named as ir-measures writes them (P@5, nDCG@20, Success@1, ...)."""
PRECISION_TARGET = 0.9
"""The precision the threshold finder reports a threshold for, beside the one of best F1."""
PerQuery = dict[str, dict[str, float]]
"""Measure name -> query id -> value."""
Judge = Callable[[RerankBackend, Sequence[Query], Progress | None], list[list[Judgement]]]


@dataclass(frozen=True)
class PairedComparison:
    """A measure of two runs over the queries both answer: their means, and whether the difference is real."""

    before: float
    after: float
    p_value: float | None
    """Two-sided paired t-test over the queries; None with fewer than two queries; 1.0 when no query changed."""

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < 0.05


@dataclass
class Reranked:
    """One instruction's reranking of the first stage: the run, its judgements, its measures."""

    instruction: str | None
    run: Run
    judged: dict[str, dict[str, Judgement]]
    """Query id -> document id -> the model's judgement (the top K of the first stage)."""
    per_query: PerQuery = field(default_factory=dict)
    model: str = ""
    """The model that judged it."""
    top_k: int = 0
    """How many of each query's first-stage documents were reranked (0: not said)."""
    seconds_per_query: float | None = None
    """Measured time of scoring its pairs, per query; None when some came from a judgement store."""


def parse_measures(names: Sequence[str]) -> list[ir_measures.Measure]:
    """DEFAULT_MEASURES and `names`, each once; ValueError naming one ir-measures cannot read."""
    measures: list[ir_measures.Measure] = []
    for name in [*DEFAULT_MEASURES, *names]:
        try:
            measure = ir_measures.parse_measure(name)
        except (NameError, ValueError, SyntaxError, TypeError):
            raise ValueError(f"{name!r} is not a measure ir-measures knows (e.g. nDCG@10, RR@10, R@100, AP, P@5, "
                             "Success@1)") from None
        if measure not in measures:
            measures.append(measure)
    return measures


def evaluated_queries(topics: Iterable[str], qrels: Qrels) -> list[str]:
    """The queries an evaluation averages over: the topics' queries (queries.jsonl or `--queries`) that have labels,
    in the topics' order. A labelled query outside the topics is not asked about, so it is not evaluated."""
    return [qid for qid in topics if qid in qrels]


def without_candidates(topics: Iterable[str], qrels: Qrels, run: Run) -> list[str]:
    """The evaluated queries for which the run ranks no document (each counts 0 for every measure)."""
    return [qid for qid in evaluated_queries(topics, qrels) if not run.get(qid)]


def measure(qrels: Qrels, run: Run, measures: Sequence[ir_measures.Measure], topics: Iterable[str]) -> PerQuery:
    """Each measure's value per evaluated query (`evaluated_queries`): one the run does not rank counts 0, as
    trec_eval -c counts it, and the run's queries outside them are not measured.

    ir-measures alone would also count 0 for every labelled query the run lacks, topics or not, which dilutes any
    evaluation of a subset of a dataset's queries (a held-out split, a language)."""
    asked = evaluated_queries(topics, qrels)
    labels = {qid: qrels[qid] for qid in asked}
    scored = {qid: {docid: score for docid, score in run[qid]} for qid in asked if run.get(qid)}
    out: PerQuery = {str(m): dict.fromkeys(asked, 0.0) for m in measures}
    if scored:
        for metric in ir_measures.iter_calc(list(measures), labels, scored):
            out[str(metric.measure)][metric.query_id] = float(metric.value)
    return out


def means(per_query: PerQuery) -> dict[str, float]:
    return {name: sum(values.values()) / len(values) if values else 0.0 for name, values in per_query.items()}


def compare(before: PerQuery, after: PerQuery) -> dict[str, PairedComparison]:
    """Each measure's means before and after, and a paired t-test over the queries both have."""
    out = {}
    for name, was in before.items():
        now = after[name]
        common = sorted(set(was) & set(now))
        a, b = [was[q] for q in common], [now[q] for q in common]
        if len(common) < 2:
            p_value = None
        elif all(x == y for x, y in zip(a, b)):
            p_value = 1.0
        else:
            p_value = float(stats.ttest_rel(b, a).pvalue)
            p_value = 1.0 if math.isnan(p_value) else p_value
        out[name] = PairedComparison(sum(a) / len(a) if a else 0.0, sum(b) / len(b) if b else 0.0, p_value)
    return out


def check_run(run: Run, queries: Mapping[str, str], run_name: str) -> None:
    """Every query the run ranks has a text."""
    missing = sorted(set(run) - set(queries))
    if missing:
        raise DatasetError(f"{run_name}: {len(missing)} quer{'ies' if len(missing) > 1 else 'y'} of the run "
                           f"{'are' if len(missing) > 1 else 'is'} not among the queries: {', '.join(missing[:5])}"
                           f"{' ...' if len(missing) > 5 else ''}")


def rerank_run(backend: RerankBackend, first: Run, queries: Mapping[str, str], texts: Mapping[str, str], top_k: int,
               instruction: str | None, judge: Judge, progress: Progress | None = None,
               passage_tokens: int | None = None, max_passages: int | None = None) -> Reranked:
    """Each query's top `top_k` of `first` put in the model's order, the rest below in theirs; with passage_tokens,
    each document judged by its best passage."""
    qids = list(first)
    asked = [Query(queries[q], [texts[d] for d, _ in first[q][:top_k]], instruction, passage_tokens=passage_tokens,
                   max_passages=max_passages) for q in qids]
    verdicts = judge(backend, asked, progress)
    run: Run = {}
    judged: dict[str, dict[str, Judgement]] = {}
    for qid, q, judgements in zip(qids, asked, verdicts):
        top = first[qid][:top_k]
        order = [top[d.index][0] for d in rank_judgements(q.documents, judgements)]
        ranked = order + [docid for docid, _ in first[qid][top_k:]]
        run[qid] = [(docid, float(len(ranked) - n)) for n, docid in enumerate(ranked)]
        judged[qid] = {docid: j for (docid, _), j in zip(top, judgements)}
    return Reranked(instruction, run, judged, model=backend.model_name, top_k=top_k)


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    """P("yes") at or above which a document is called relevant."""
    logit: float
    precision: float
    recall: float
    f1: float


def threshold_table(judged: Mapping[str, Mapping[str, Judgement]], qrels: Qrels) -> list[ThresholdRow]:
    """Precision, recall and F1 of "score >= t" over every labelled (query, document) pair the model judged, one row
    per distinct score, highest first. Relevant: a label above 0; an unlabelled pair is not relevant."""
    pairs = sorted(((j.score, j.logit, qrels.get(qid, {}).get(docid, 0) > 0)
                    for qid, docs in judged.items() for docid, j in docs.items()), key=lambda p: -p[0])
    relevant = sum(r for _, _, r in pairs)
    rows: list[ThresholdRow] = []
    hits = taken = 0
    for n, (score, logit, is_relevant) in enumerate(pairs):
        taken, hits = taken + 1, hits + is_relevant
        if n + 1 < len(pairs) and pairs[n + 1][0] == score:
            continue
        precision = hits / taken
        recall = hits / relevant if relevant else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(ThresholdRow(score, logit, precision, recall, f1))
    return rows


def best_f1(rows: Sequence[ThresholdRow]) -> ThresholdRow | None:
    return max(rows, key=lambda r: (r.f1, r.threshold), default=None)


def for_precision(rows: Sequence[ThresholdRow], target: float) -> ThresholdRow | None:
    """The lowest threshold (most recall) whose precision still reaches `target`."""
    return min((r for r in rows if r.precision >= target), key=lambda r: r.threshold, default=None)


FirstStageMaker = Callable[[Mapping[str, str], Mapping[str, str], int], Run]
"""Makes a first stage's run: (queries, documents, depth) -> run (analysis/dense_retrieval.make_first_stage)."""


def load_evaluation(folder: Path, run: Path | None, top_k: int, queries: Path | None = None,
                    qrels: Path | None = None, first_stage: FirstStageMaker | None = None
                    ) -> tuple[Dataset, Run, dict[str, str]]:
    """The dataset of a BEIR folder (`queries`, `qrels`: files that stand for its own), the first stage's run (read
    from `run`, or made over the corpus by `first_stage`, BM25 when None, 100 deep or K if deeper) and the texts of
    each query's top K."""
    corpus, queries_file, qrels_file = beir_files(folder, queries, qrels)
    dataset = Dataset(corpus, read_queries(queries_file), read_qrels(qrels_file))
    if run is not None:
        first = read_run(run)
        check_run(first, dataset.queries, str(run))
        wanted = {docid for ranked in first.values() for docid, _ in ranked[:top_k]}
        return dataset, first, read_documents(corpus, wanted)
    from reranker.analysis.first_stage import bm25_run

    documents = read_documents(corpus)
    first = (first_stage or bm25_run)({q: t for q, t in dataset.queries.items() if q in dataset.qrels}, documents,
                                      max(top_k, 100))
    return dataset, first, documents


def metrics_document(dataset_name: str, first_stage: str, model: str, top_k: int, first: Run, before: PerQuery,
                     reranked: Sequence[Reranked], qrels: Qrels) -> dict:
    """METRICS.json (and the Evaluate page's JSON): the first run's figures at the top (`before`, `after`,
    `significance`), the runs at the first run's depth under `instructions` (each tested against the first), every
    model x instruction x depth run under `runs`, the paired tests of every two runs at a depth under `comparisons`,
    the first stage's recall and the cost per depth under `depths` (analysis/evaluation_runs.py); which queries were
    evaluated (`before`'s, see `measure`) and which of them the first stage gave no candidate."""
    from reranker.analysis.evaluation_runs import comparisons_section, depths_section, runs_section, suggestions_section

    runs = runs_section(reranked, before, qrels, model, top_k)
    evaluated = list(next(iter(before.values()), {}))
    empty = [qid for qid in evaluated if not first.get(qid)]
    top = runs[0]
    document = {"dataset": dataset_name, "first_stage": first_stage, "model": model, "top_k": top["top_k"],
                "queries": len(evaluated), "queries_evaluated": len(evaluated),
                "queries_without_candidates": len(empty), "query_ids_without_candidates": empty,
                "before": means(before), "after": top["after"], "significance": top["significance"],
                "per_query": {"before": before, "after": top["per_query"]}, "threshold": top["threshold"],
                "instructions": [run for run in runs if run["top_k"] == top["top_k"]],
                "models": list(dict.fromkeys(run["model"] for run in runs)),
                "top_ks": list(dict.fromkeys(run["top_k"] for run in runs)),
                "runs": runs, "comparisons": comparisons_section(runs),
                "depths": depths_section(qrels, first, evaluated, runs)}
    document["suggested_top_k"] = suggestions_section(document)
    return document


def coverage_text(document: Mapping) -> str:
    """How many queries were evaluated, and how many of them had nothing to rerank, in words."""
    evaluated, empty = document["queries_evaluated"], document["queries_without_candidates"]
    text = f"{evaluated:,} quer{'y' if evaluated == 1 else 'ies'} evaluated (the topics' labelled queries)"
    if empty:
        text += (f"; {empty:,} of {evaluated:,} {'has' if empty == 1 else 'have'} no candidates in the first stage's "
                 "run and count 0 for every measure")
    return text


def threshold_row(row: ThresholdRow | None) -> dict | None:
    if row is None:
        return None
    return {"score": row.threshold, "logit": row.logit if math.isfinite(row.logit) else None,
            "precision": row.precision, "recall": row.recall, "f1": row.f1}
