"""What an evaluation costs, and what the judgement store saves: `python -m reranker evaluate`'s work on the sample
dataset (assets/eval_sample, its BM25 run), first with an empty store, then again with another measure.

    .venv/bin/python bench/evaluate_speed.py [--model bench/out/qwen3-reranker-0.6b-random] [--top-k 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from reranker.cli.evaluate_command import EvaluateOptions, evaluate

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "eval_sample"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"))
    parser.add_argument("--top-k", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        options = EvaluateOptions(dataset=SAMPLE, run=SAMPLE / "bm25.trec", top_k=args.top_k, backend=args.model,
                                  store=Path(folder) / "judgements.sqlite3")
        for label, measures in (("empty store", []), ("again, another measure", ["P@5"])):
            options.measures = measures
            said: list[str] = []
            started = time.perf_counter()
            outcome = evaluate(options, said.append)
            seconds = time.perf_counter() - started
            pairs = sum(len(j) for j in outcome.reranked[0].judged.values())
            print(f"{label}: {seconds:.1f} s for {pairs} pairs ({pairs / seconds:.2f} pairs/s, the model's load "
                  f"included); {said[-1]}")


if __name__ == "__main__":
    main()
