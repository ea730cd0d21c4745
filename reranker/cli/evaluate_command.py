"""`python -m reranker evaluate DATASET`: a first stage's run reranked by the model, measured before and after with
trec_eval's definitions, the difference tested; the reranked run and the figures written out (docs/EVALUATE.md).

DATASET is a BEIR folder; `--queries`/`--qrels` name TSV topics or TREC qrels instead of its own. Pairs are scored
through any backend (a model here, a server) or on Ray, and kept in a judgement store on disk, so a run that stops is
resumed without scoring again what was scored, and a second evaluation of the same pairs costs nothing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reranker.analysis.evaluation import (
    Reranked,
    coverage_text,
    load_evaluation,
    measure,
    metrics_document,
    parse_measures,
    rerank_run,
)
from reranker.analysis.judgement_store import CHUNK_PAIRS, JudgementStore
from reranker.backends import open_backend
from reranker.core.backend import RerankBackend
from reranker.core.environment import DATA_DIR
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import Judgement, Progress, Query
from reranker.formats.retrieval import DatasetError, Run, write_run

RAY_CHUNK_PAIRS = 200_000
"""On Ray every call starts its workers and loads the model in each: one call for all the pairs not yet stored."""


@dataclass
class EvaluateOptions:
    dataset: Path
    run: Path | None = None
    """The first stage's TREC run; None: BM25 over the corpus."""
    top_k: int = 100
    instructions: list[str | None] = field(default_factory=lambda: [None])
    measures: list[str] = field(default_factory=list)
    backend: str | None = None
    key: str | None = None
    ray_address: str | None = None
    """Score the pairs on this Ray ("local": a Ray on this machine); None: in this process or on the server."""
    queries: Path | None = None
    qrels: Path | None = None
    passage_tokens: int | None = None
    """Judge each document by its best passage of at most this many tokens (long documents)."""
    max_passages: int | None = None
    store: Path | None = None
    """The judgement store; None: `judgements.sqlite3` in the data folder ($RERANKER_DATA_DIR, else ./data)."""
    dtype: str | None = None
    """The engine's dtype ("int8": the approximate CPU mode); None: $RERANKER_DTYPE, else auto."""


@dataclass
class Outcome:
    first: Run
    before: dict[str, dict[str, float]]
    reranked: list[Reranked]
    summary: dict
    """What METRICS.json holds."""


def evaluate(options: EvaluateOptions, report: Callable[[str], None] = lambda line: None,
             progress: Progress | None = None) -> Outcome:
    if options.top_k < 1:
        raise ValueError("--top-k must be at least 1")
    measures = parse_measures(options.measures)
    dataset, first, texts = load_evaluation(options.dataset, options.run, options.top_k, options.queries,
                                            options.qrels)
    if options.ray_address:
        from reranker.cli.ray_batch import BatchOptions, RayBackend

        backend: RerankBackend = RayBackend(BatchOptions(
            backend=options.backend, key=options.key, dtype=options.dtype,
            ray_address=None if options.ray_address == "local" else options.ray_address))
    else:
        backend = open_backend(options.backend, options.key, dtype=options.dtype)
    before = measure(dataset.qrels, first, measures, dataset.queries)
    store = JudgementStore(options.store or DATA_DIR.read() / "judgements.sqlite3")
    pairs = sum(min(len(r), options.top_k) for r in first.values())
    report(f"{len(first):,} queries, top {options.top_k} of the first stage: {pairs:,} pairs per instruction, "
           f"scored by {backend.model_name} ({backend.capabilities.where})")
    chunk = RAY_CHUNK_PAIRS if options.ray_address else CHUNK_PAIRS

    def judge(backend: RerankBackend, queries: Sequence[Query], progress: Progress | None) -> list[list[Judgement]]:
        return store.judge_many(backend, queries, progress, chunk)

    reranked = []
    try:
        for instruction in options.instructions:
            started, scored_before = time.perf_counter(), store.pairs_scored
            result = rerank_run(backend, first, dataset.queries, texts, options.top_k, instruction, judge, progress,
                                options.passage_tokens, options.max_passages)
            result.per_query = measure(dataset.qrels, result.run, measures, dataset.queries)
            reranked.append(result)
            scored = store.pairs_scored - scored_before
            report(f"instruction {resolve_instruction(instruction)!r}: {scored:,} pairs scored now "
                   f"({pairs - scored:,} from the store) in {time.perf_counter() - started:.1f} s")
    finally:
        store.close()
    document = metrics_document(str(options.dataset), str(options.run) if options.run else "BM25 (bm25s)",
                                backend.model_name, options.top_k, first, before, reranked, dataset.qrels)
    return Outcome(first, before, reranked, document)


def write_outputs(outcome: Outcome, output: Path | None, metrics: Path | None) -> list[Path]:
    """OUT.trec (one file per instruction beyond the first: OUT.2.trec, ...) and METRICS.json."""
    written = []
    if output is not None:
        for n, result in enumerate(outcome.reranked):
            path = output if n == 0 else output.with_name(f"{output.stem}.{n + 1}{output.suffix}")
            write_run(path, result.run, "qwen3-reranker")
            written.append(path)
    if metrics is not None:
        metrics.write_text(json.dumps(outcome.summary, ensure_ascii=False, indent=1, allow_nan=False),
                           encoding="utf-8")
        written.append(metrics)
    return written


def table(summary: dict) -> str:
    """The before/after figures as people read them."""
    lines = [f"{coverage_text(summary)}; top {summary['top_k']} reranked by {summary['model']}"]
    for run in summary["instructions"]:
        lines.append(f"\ninstruction: {run['instruction']}")
        lines.append(f"{'measure':<10} {'before':>8} {'after':>8} {'change':>8}  p (paired t)")
        for name, test in run["significance"].items():
            p = test["p_value"]
            mark = " *" if test["significant_at_0.05"] else ""
            lines.append(f"{name:<10} {summary['before'][name]:8.4f} {run['after'][name]:8.4f} "
                         f"{test['after_minus_before']:+8.4f}  {'n/a' if p is None else f'{p:.3g}'}{mark}")
        best = run["threshold"]["best_f1"]
        if best is not None:
            lines.append(f"threshold of best F1: P(yes) >= {best['score']:.4g} (precision {best['precision']:.3f}, "
                         f"recall {best['recall']:.3f}, F1 {best['f1']:.3f})")
    lines.append("\n* significant at 0.05")
    return "\n".join(lines)


def main(args) -> int:
    """The `evaluate` command (cli/__init__ parses its arguments)."""
    from reranker.core.failures import ModelLoadError, RerankerError, UnsupportedOption

    options = EvaluateOptions(dataset=Path(args.dataset), run=Path(args.run) if args.run else None, top_k=args.top_k,
                              instructions=args.instruction or [None], measures=args.measures or [],
                              backend=args.backend, key=args.key, ray_address=args.ray,
                              queries=Path(args.queries) if args.queries else None,
                              qrels=Path(args.qrels) if args.qrels else None,
                              store=Path(args.store) if args.store else None, passage_tokens=args.passage_tokens,
                              max_passages=args.max_passages, dtype=args.dtype)
    for path in (args.output, args.json):
        if path and not Path(path).resolve().parent.is_dir():
            print(f"error: the folder of {path} does not exist; nothing was scored", file=sys.stderr)
            return 2
    try:
        outcome = evaluate(options, lambda line: print(line, file=sys.stderr, flush=True), _progress_line)
    except (DatasetError, ValueError, ModelLoadError, RerankerError, UnsupportedOption) as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 1
    for path in write_outputs(outcome, Path(args.output) if args.output else None,
                              Path(args.json) if args.json else None):
        print(f"wrote {path}", file=sys.stderr)
    print(table(outcome.summary))
    return 0


def _progress_line(done: int, total: int) -> None:
    print(f"\rscored {done:,} of {total:,} pairs", end="" if done < total else "\n", file=sys.stderr, flush=True)
