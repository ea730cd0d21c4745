"""What slicing costs one big request, in-process: the sidecar's RequestQueue over the engine, no HTTP.

The same request (--queries queries x 5 documents) scored whole and in slices of at most N pairs, interleaved
over several rounds; pairs/s per slice size, medians.

    .venv/bin/python bench/slicing.py --model bench/out/tiny-qwen3-reranker [--queries 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from corpus import rerank_request

from reranker import Query, Qwen3Reranker
from reranker.sidecar.request_queue import RequestQueue

WHOLE = 10**9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--doc-words", type=int, default=30)
    parser.add_argument("--slices", type=int, nargs="+", default=[4096, 1024, 256, 64], help="pairs per call")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    engine = Qwen3Reranker(args.model, device=args.device)
    rng = random.Random(7)
    queries = [Query(body["query"], body["documents"])
               for body in (rerank_request(rng, 5, args.doc_words) for _ in range(args.queries))]
    pairs = sum(len(q.documents) for q in queries)
    engine.judge_many(queries[:20])
    rates: dict[int, list[float]] = {}
    for _ in range(args.rounds):
        for cap in (WHOLE, *args.slices):
            queue = RequestQueue(engine, max_pairs=cap, max_chars=10**12, slice_seconds=10**6)
            started = time.perf_counter()
            queue.submit(queries).result()
            rates.setdefault(cap, []).append(pairs / (time.perf_counter() - started))
            queue.close()
    whole = statistics.median(rates[WHOLE])
    print(f"model `{args.model}` on {engine.device} ({engine.dtype}); {pairs:,} pairs; medians of {args.rounds}\n")
    print("| pairs per call | pairs/s | against whole |\n|---:|---:|---:|")
    for cap, values in rates.items():
        rate = statistics.median(values)
        print(f"| {'whole' if cap == WHOLE else cap} | {rate:.1f} | {rate / whole - 1:+.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
