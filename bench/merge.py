"""What merging small requests can recover, measured in-process (no HTTP, no load generator on the same cores).

The same 50 documents scored three ways, interleaved over several rounds:
- one query with all 50 (what one client sending 50-document requests costs per pair);
- 10 queries x 5 documents merged into one `judge_many` call (what the sidecar's queue does);
- the same 10 queries one call each (no merging).

It also prints the arithmetic bound: every query's own tokens (the part after the shared system + instruction)
must run once per query, so 10 queries of 5 documents compute more tokens than 1 query of 50, and on a
compute-bound CPU no scheduling can make up for that.

    python bench/merge.py --model bench/out/qwen3-reranker-0.6b-random [--doc-words 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from corpus import rerank_request

from reranker import Query, Qwen3Reranker
from reranker.engine.encoding import common_prefix_length


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--doc-words", type=int, nargs="+", default=[30, 80])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    engine = Qwen3Reranker(args.model, device=args.device, dtype=args.dtype)
    engine.judge("warm-up", ["a short document"])
    print(f"model `{args.model}` on {engine.device} ({engine.dtype}); {args.rounds} rounds, interleaved\n")
    print("| words/doc | query tokens | tail tokens/doc | bound | 1 x 50 pairs/s | 10 x 5 merged pairs/s | "
          "merged / 1 x 50 | 10 x 5 separate pairs/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for words in args.doc_words:
        requests = [rerank_request(random.Random(100 + n), 5, words) for n in range(10)]
        documents = [d for r in requests for d in r["documents"]]
        one = [Query(requests[0]["query"], documents)]
        merged = [Query(r["query"], r["documents"]) for r in requests]
        single, together, apart = [], [], []
        for _ in range(args.rounds):
            single.append(_timed(engine.judge_many, one))
            together.append(_timed(engine.judge_many, merged))
            apart.append(_timed(lambda qs: [engine.judge_many([q]) for q in qs], merged))
        query_tokens, tail_tokens = _own_tokens(engine, merged)
        bound = sum(_own_tokens(engine, one)) / (query_tokens + tail_tokens)
        s, t, a = (len(documents) / statistics.median(x) for x in (single, together, apart))
        print(f"| {words} | {query_tokens / len(merged):.1f} | {tail_tokens / len(documents):.1f} | {bound:.3f} | "
              f"{s:.2f} | {t:.2f} | {t / s:.3f} | {a:.2f} |", flush=True)
    print("\nbound: tokens 1 x 50 computes / tokens 10 x 5 computes, the most merged can reach of 1 x 50's pairs/s "
          "when every computed token costs the same. Query tokens: a query's own part, per query; tail tokens: a "
          "document's own part (document + the closing assistant turn). Medians of the rounds.")
    return 0


def _timed(fn: Callable[[list[Query]], object], queries: list[Query]) -> float:
    started = time.perf_counter()
    fn(queries)
    return time.perf_counter() - started


def _own_tokens(engine: Qwen3Reranker, queries: list[Query]) -> tuple[int, int]:
    """(tokens of all queries' own parts, tokens of all documents' own parts) the engine has to compute."""
    stem = len(engine.encoder.instruction_prefix(None))
    query_tokens = tail_tokens = 0
    for q in queries:
        shared = engine.encoder.shared_prefix(q.query, q.instruction)
        pairs = engine.encoder.encode(q.query, q.documents, q.instruction)
        length = min(min(common_prefix_length(p.input_ids, shared), len(p.input_ids) - 1) for p in pairs)
        query_tokens += length - stem
        tail_tokens += sum(len(p.input_ids) - length for p in pairs)
    return query_tokens, tail_tokens


if __name__ == "__main__":
    raise SystemExit(main())
