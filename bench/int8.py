"""The approximate CPU modes (int8, bfloat16, and fast: the one of them this CPU's flags pick) against float32, side
by side in one run on the full-size shape: speed on the 16-document mixed workload and on 20 short documents (an
analyst's paste), peak RSS while loading and scoring, and the drift of scores and rankings on a 4-query x 20-document
corpus. Each dtype runs in a child process of its own, so peaks do not mix. "int8:onednn" is int8 with oneDNN's
quantized linear for its products instead of torch._int_mm (engine/int8.py's ONEDNN_LINEAR).

    .venv/bin/python bench/int8.py [--model bench/out/qwen3-reranker-0.6b-random] [--dtypes float32 int8 bfloat16 fast]

Random weights are not the real model: to measure the drift on your own data with the real weights, run the
Evaluate command twice, `--dtype float32` and `--dtype int8`, and compare the figures (docs/EVALUATE.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from corpus import EN_WORDS, workload
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 3


def short_documents(count: int = 20, seed: int = 5) -> tuple[str, list[str]]:
    rng = random.Random(seed)
    return "how does gravity work", [" ".join(rng.choice(EN_WORDS) for _ in range(rng.randint(10, 30))).capitalize()
                                     + "." for _ in range(count)]


def child(model: str, dtype: str) -> None:
    from reranker import Qwen3Reranker
    from reranker.engine import int8

    if dtype == "int8:onednn":
        int8.ONEDNN_LINEAR = int8.has_onednn_linear()
    engine = Qwen3Reranker(model=model, device="cpu", dtype=dtype.partition(":")[0])
    engine.judge("warm-up", ["A short warm-up document."])
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def best_of(query: str, documents: list[str]) -> float:
        times = []
        for n in range(ROUNDS):  # a new query each round: its prefix is computed every time, as for a user
            started = time.perf_counter()
            engine.score(f"{query} ({n})", documents)
            times.append(time.perf_counter() - started)
        return min(times)

    [(query, mixed)] = workload(1, 16, seed=7)
    short_query, short = short_documents()
    out = {"dtype": dtype, "ran_as": engine.dtype_name, "load_s": engine.load_seconds,
           "mixed_16_s": best_of(query, mixed)}
    out["mixed_16_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["short_20_s"] = best_of(short_query, short)
    out["drift_scores"] = [engine.score(q, docs) for q, docs in workload(4, 20, seed=11)]
    out["loaded_mb"] = loaded
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def drift(exact: list[list[float]], other: list[list[float]]) -> dict[str, float]:
    def top10(scores: list[float]) -> set[int]:
        return set(sorted(range(len(scores)), key=lambda i: -scores[i])[:10])

    return {"max_dp": max(abs(a - b) for e, o in zip(exact, other) for a, b in zip(e, o)),
            "spearman": statistics.mean(spearmanr(e, o).statistic for e, o in zip(exact, other)),
            "top10_overlap": statistics.mean(len(top10(e) & top10(o)) / 10 for e, o in zip(exact, other))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "int8", "bfloat16", "fast"])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.model, args.child)
        return
    from reranker.engine.loading import NATIVE_BFLOAT16_FLAGS, cpu_flags

    flags = cpu_flags()
    shown = sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))
    print(f"CPU flags: {', '.join(shown) or 'none read'}; native bfloat16: "
          f"{'yes' if NATIVE_BFLOAT16_FLAGS & flags else 'no'}; {os.cpu_count()} CPUs")
    rows = {}
    for dtype in args.dtypes:
        done = subprocess.run([sys.executable, __file__, "--model", args.model, "--child", dtype],
                              capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            print(f"{dtype}: failed: {done.stderr[-800:]}")
            continue
        rows[dtype] = json.loads(done.stdout.strip().splitlines()[-1])
    exact = rows.get("float32")
    print("| dtype (ran as) | load (s) | 16 mixed documents (s) | x float32 | 20 short documents (s) | x float32 "
          "| peak RSS loaded (MB) | peak RSS, 16 mixed scored (MB) | peak RSS, all (MB) | max abs dp "
          "| Spearman (mean of 4 queries) | top-10 overlap |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for dtype, r in rows.items():
        d = drift(exact["drift_scores"], r["drift_scores"]) if exact else None
        fast = (f"{exact['mixed_16_s'] / r['mixed_16_s']:.2f}x", f"{exact['short_20_s'] / r['short_20_s']:.2f}x") \
            if exact else ("", "")
        drifted = f"{d['max_dp']:.4f} | {d['spearman']:.4f} | {d['top10_overlap']:.2f}" if d else " | | "
        print(f"| {dtype} ({r['ran_as']}) | {r['load_s']:.1f} | {r['mixed_16_s']:.2f} | {fast[0]} | "
              f"{r['short_20_s']:.2f} | {fast[1]} | {r['loaded_mb']:,.0f} | {r['mixed_16_peak_mb']:,.0f} | "
              f"{r['peak_mb']:,.0f} | {drifted} |")


if __name__ == "__main__":
    main()
