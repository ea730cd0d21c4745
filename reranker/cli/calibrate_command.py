"""`python -m reranker calibrate DATASET --output CAL.json`: a monotone map from the model's log-odds to P(relevant),
fitted on a labelled dataset's pairs and cross-validated by query (analysis/calibration.py, docs/TUNE.md).

The pairs are each query's top K of the first stage, judged exactly as `evaluate` judges them (the same code, the same
judgement store: a dataset evaluated before is calibrated without scoring anything again).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from reranker.analysis.calibration import calibration_document, labelled_pairs
from reranker.cli.evaluate_command import EvaluateOptions, evaluate
from reranker.core.failures import BadRequest
from reranker.formats.retrieval import DatasetError, Qrels, beir_files, lines_of, read_qrels


def graded_qrels(folder: Path, qrels: Path | None = None) -> Qrels:
    """The dataset's labels, each a whole grade of at least 0 (0 not relevant, 1 relevant, 2 highly relevant);
    DatasetError naming the line of one that is not (read_qrels alone reads 0.7 as 0)."""
    path = beir_files(folder, None, qrels)[2]
    for number, text in lines_of(path):
        fields = text.split()
        if number == 1 and fields and fields[0].lower() in ("query-id", "query_id", "qid"):
            continue
        grade = fields[-1] if len(fields) in (3, 4) else ""
        if not grade.isdigit():
            raise DatasetError(f"{path}:{number}: the label {grade!r} is not a grade; labels are whole numbers: 0 "
                               "(not relevant), 1 (relevant), 2 (highly relevant)")
    return read_qrels(path)


def calibrate(options: EvaluateOptions, method: str) -> dict:
    """CAL.json's document for the pairs `options` names (its first instruction)."""
    qrels = graded_qrels(options.dataset, options.qrels)
    outcome = evaluate(options, lambda line: print(line, file=sys.stderr, flush=True))
    judged = outcome.reranked[0].judged
    document = calibration_document(method, labelled_pairs(judged, qrels))
    return {**document, "model": outcome.summary["model"], "dataset": str(options.dataset),
            "instruction": outcome.summary["instructions"][0]["instruction"], "top_k": options.top_k}


def main(args) -> int:
    """The `calibrate` command (cli/__init__ parses its arguments)."""
    from reranker.core.failures import RerankerError

    output = Path(args.output)
    if not output.resolve().parent.is_dir():
        print(f"error: the folder of {output} does not exist; nothing was scored", file=sys.stderr)
        return 2
    options = EvaluateOptions(dataset=Path(args.dataset), run=Path(args.run) if args.run else None, top_k=args.top_k,
                              instructions=[args.instruction], backend=args.backend, key=args.key,
                              queries=Path(args.queries) if args.queries else None,
                              qrels=Path(args.qrels) if args.qrels else None,
                              store=Path(args.store) if args.store else None, dtype=args.dtype)
    try:
        document = calibrate(options, args.method)
    except (BadRequest, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RerankerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    output.write_text(json.dumps(document, indent=1, allow_nan=False), encoding="utf-8")
    print(f"wrote {output}", file=sys.stderr)
    print(f"{document['method']} calibration of {document['model']} on {document['pairs']:,} pairs "
          f"({document['queries']:,} queries, {document['relevant_pairs']:,} relevant), {document['cross_validation']}")
    print(f"{'':<8} {'before':>8} {'after':>8}")
    print(f"{'ECE':<8} {document['ece_before']:8.4f} {document['ece_after']:8.4f}")
    print(f"{'Brier':<8} {document['brier_before']:8.4f} {document['brier_after']:8.4f}")
    return 0
