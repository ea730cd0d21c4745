"""`python -m reranker evaluate DATASET`: a first stage's run reranked by the model, measured before and after with
trec_eval's definitions, the difference tested; the reranked run and the figures written out (docs/EVALUATE.md).

DATASET is a BEIR folder; `--queries`/`--qrels` name TSV topics or TREC qrels instead of its own. Pairs are scored
through any backend (a model here, a server) or on Ray, and kept in a judgement store on disk, so a run that stops is
resumed without scoring again what was scored, and a second evaluation of the same pairs costs nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reranker.analysis.dense_retrieval import FirstStage, allowed_memory, first_stage_maker, parse_first_stage
from reranker.analysis.evaluation import (
    FirstStageMaker,
    Reranked,
    load_evaluation,
    measure,
    metrics_document,
    parse_measures,
)
from reranker.analysis.evaluation_runs import check_depths, pairs_to_depth, rerank_at_depths
from reranker.analysis.judgement_store import CHUNK_PAIRS, JudgementStore
from reranker.backends import open_backend
from reranker.cli.evaluate_table import table
from reranker.core.backend import RerankBackend
from reranker.core.calibrated import calibrated
from reranker.core.environment import DATA_DIR
from reranker.core.failures import BadRequest
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
    calibration: Path | None = None
    """A CAL.json (`calibrate`): scores read through it, the ranking unchanged (core/calibrated.py)."""
    more_backends: list[str] = field(default_factory=list)
    """Models (or servers) evaluated after `backend`, on the same first stage: `--model` given again."""
    depths: list[int] | None = None
    """Depths to evaluate (`--top-k 10,20,50`), scored once to the deepest; None: top_k alone, which may be deeper
    than the run (all of each query's run is reranked)."""
    first_stage: str = "bm25"
    """Without a run: bm25, dense:MODEL or hybrid:MODEL (analysis/dense_retrieval.py)."""
    embeddings: Path | None = None
    """Where a dense first stage keeps its embeddings; None: `embeddings/` beside the judgement store."""
    exact_search_memory: int | None = None
    """Bytes exact search's embeddings may take; None: half the memory free."""


@dataclass
class Outcome:
    first: Run
    before: dict[str, dict[str, float]]
    reranked: list[Reranked]
    summary: dict
    """What METRICS.json holds."""
    first_made_here: bool = False
    """The first stage was made here (BM25, dense, hybrid), not read from a run: it is written beside the runs."""


def evaluate(options: EvaluateOptions, report: Callable[[str], None] = lambda line: None,
             progress: Progress | None = None) -> Outcome:
    depths = _depths(options)
    measures = parse_measures(options.measures)
    stage = parse_first_stage(options.first_stage)
    if options.run is not None and stage.kind != "bm25":
        raise BadRequest(f"--run and --first-stage {options.first_stage} both name the first stage; give one")
    store_path = options.store or DATA_DIR.read() / "judgements.sqlite3"
    dataset, first, texts = load_evaluation(options.dataset, options.run, max(depths), options.queries, options.qrels,
                                            _first_stage_maker(options, stage, store_path, report))
    if options.depths is not None:
        check_depths(first, depths, str(options.run) if options.run else stage.text())
    before = measure(dataset.qrels, first, measures, dataset.queries)
    store = JudgementStore(store_path)
    chunk = RAY_CHUNK_PAIRS if options.ray_address else CHUNK_PAIRS

    def judge(backend: RerankBackend, queries: Sequence[Query], progress: Progress | None) -> list[list[Judgement]]:
        return store.judge_many(backend, queries, progress, chunk)

    reranked: list[Reranked] = []
    try:
        for spec in [options.backend, *options.more_backends]:
            backend = _open_scorer(options, spec)
            pairs = pairs_to_depth(first, max(depths))
            report(f"{len(first):,} queries, top {max(depths)} of the first stage: {pairs:,} pairs per instruction, "
                   f"scored by {backend.model_name} ({backend.capabilities.where})")
            for instruction in options.instructions:
                at_depths = rerank_at_depths(backend, store, judge, first, dataset.queries, texts, depths,
                                             instruction, progress, report, options.passage_tokens,
                                             options.max_passages)
                for result in at_depths:
                    result.per_query = measure(dataset.qrels, result.run, measures, dataset.queries)
                reranked.extend(at_depths)
            del backend  # the next model loads once this one is let go
    finally:
        store.close()
    document = metrics_document(str(options.dataset), str(options.run) if options.run else stage.text(),
                                reranked[0].model, depths[0], first, before, reranked, dataset.qrels)
    return Outcome(first, before, reranked, document, first_made_here=options.run is None)


def _first_stage_maker(options: EvaluateOptions, stage: FirstStage, store_path: Path,
                       report: Callable[[str], None]) -> FirstStageMaker | None:
    """`stage` over a corpus (None: BM25): its embeddings kept beside the judgement store, exact search allowed half
    the memory free (or `exact_search_memory`)."""
    if stage.kind == "bm25":
        return None
    from reranker.engine.embeddings import EmbeddingModel
    from reranker.engine.memory import available_bytes

    memory = options.exact_search_memory
    if memory is None:
        memory = allowed_memory(available_bytes())
    return first_stage_maker(stage, options.embeddings or store_path.parent / "embeddings", EmbeddingModel, memory,
                             report)


def _depths(options: EvaluateOptions) -> list[int]:
    depths = list(dict.fromkeys(options.depths or [options.top_k]))
    if min(depths) < 1:
        raise BadRequest("--top-k must be at least 1 (a depth, or depths separated by commas: 10,20,50,100)")
    return depths


def _open_scorer(options: EvaluateOptions, spec: str | None) -> RerankBackend:
    if options.ray_address:
        from reranker.cli.ray_batch import BatchOptions, RayBackend

        backend: RerankBackend = RayBackend(BatchOptions(
            backend=spec, key=options.key, dtype=options.dtype,
            ray_address=None if options.ray_address == "local" else options.ray_address))
    else:
        backend = open_backend(spec, options.key, dtype=options.dtype)
    return calibrated(backend, options.calibration)


def write_outputs(outcome: Outcome, output: Path | None, metrics: Path | None) -> list[Path]:
    """OUT.trec (one file per run beyond the first, in METRICS.json's `runs` order: OUT.2.trec, ...), the first
    stage's run when it was made here (OUT.first-stage.trec) and METRICS.json."""
    written = []
    if output is not None:
        for n, result in enumerate(outcome.reranked):
            path = output if n == 0 else output.with_name(f"{output.stem}.{n + 1}{output.suffix}")
            write_run(path, result.run, "qwen3-reranker")
            written.append(path)
        if outcome.first_made_here:
            path = output.with_name(f"{output.stem}.first-stage{output.suffix}")
            write_run(path, outcome.first, "first-stage")
            written.append(path)
    if metrics is not None:
        metrics.write_text(json.dumps(outcome.summary, ensure_ascii=False, indent=1, allow_nan=False),
                           encoding="utf-8")
        written.append(metrics)
    return written


def parse_depths(text: str | None) -> list[int] | None:
    """`--top-k`: one depth or several separated by commas ("10,20,50,100"); None when not given."""
    if text is None:
        return None
    try:
        depths = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise BadRequest(f"--top-k {text!r}: give a depth (100) or depths separated by commas (10,20,50,100)") from None
    if not depths:
        raise BadRequest("--top-k: give a depth (100) or depths separated by commas (10,20,50,100)")
    return depths


def main(args) -> int:
    """The `evaluate` command (cli/__init__ parses its arguments)."""
    from reranker.core.failures import ModelLoadError, RerankerError

    try:
        depths = parse_depths(args.top_k)
    except BadRequest as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    options = EvaluateOptions(dataset=Path(args.dataset), run=Path(args.run) if args.run else None,
                              top_k=depths[0] if depths else 100, depths=depths, first_stage=args.first_stage,
                              more_backends=list(getattr(args, "more_models", None) or []),
                              instructions=args.instruction or [None], measures=args.measures or [],
                              backend=args.backend, key=args.key, ray_address=args.ray,
                              queries=Path(args.queries) if args.queries else None,
                              qrels=Path(args.qrels) if args.qrels else None,
                              store=Path(args.store) if args.store else None, passage_tokens=args.passage_tokens,
                              max_passages=args.max_passages, dtype=args.dtype,
                              calibration=Path(args.calibration) if args.calibration else None)
    for path in (args.output, args.json):
        if path and not Path(path).resolve().parent.is_dir():
            print(f"error: the folder of {path} does not exist; nothing was scored", file=sys.stderr)
            return 2
    try:
        outcome = evaluate(options, lambda line: print(line, file=sys.stderr, flush=True), _progress_line)
    except (DatasetError, ValueError, ModelLoadError, RerankerError) as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 2 if isinstance(e, BadRequest) and not isinstance(e, DatasetError) else 1
    for path in write_outputs(outcome, Path(args.output) if args.output else None,
                              Path(args.json) if args.json else None):
        print(f"wrote {path}", file=sys.stderr)
    print(table(outcome.summary))
    return 0


def _progress_line(done: int, total: int) -> None:
    print(f"\rscored {done:,} of {total:,} pairs", end="" if done < total else "\n", file=sys.stderr, flush=True)
