"""Where the model runs, what it costs: the same requests in this process and through a local sidecar (HTTP cost
per request and per pair), and the same pair file scored in this process and by `python -m reranker batch` on a
local Ray (same rows, same scores).

    .venv/bin/python bench/backends.py --model bench/out/qwen3-reranker-0.6b-random
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import pandas as pd
from corpus import workload

from reranker import Query, Qwen3Reranker, open_backend
from reranker.cli.ray_batch import BatchOptions, run_batch_file
from reranker.testing.sidecar_process import SidecarProcess


def short(documents: list[str], words: int) -> list[str]:
    """Documents cut to `words` words, so that on CPU the full-size model answers in seconds."""
    return [" ".join(d.split()[:words]) if " " in d else d[: words * 2] for d in documents]


def timed(fn, repeat: int) -> float:
    """Median seconds of `repeat` calls, after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def http_cost(model: str, engine: Qwen3Reranker, repeat: int, sizes: list[int]) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as data, SidecarProcess(
            env={"RERANKER_MODEL": model, "RERANKER_DATA_DIR": data, "RERANKER_API_KEY": ""}) as server:
        server.wait_healthy(timeout=600)
        remote = open_backend(server.url)
        print("| request (documents of 30 words) | in process | through the sidecar | HTTP cost |")
        print("|---|---|---|---|")
        for docs in sizes:
            (query, documents), = workload(1, docs, rng.randrange(1000))
            queries = [Query(query, short(documents, 30))]
            local = timed(lambda queries=queries: engine.judge_many(queries), repeat)
            over_http = timed(lambda queries=queries: remote.judge_many(queries), repeat)
            print(f"| 1 query x {docs} documents | {local * 1000:.1f} ms | {over_http * 1000:.1f} ms | "
                  f"{(over_http - local) * 1000:+.1f} ms ({(over_http - local) / docs * 1000:+.2f} ms/pair) |")


def batch_cost(model: str, engine: Qwen3Reranker, pairs: int, workers: int) -> None:
    rows = [{"query": q, "document": d} for q, docs in workload(max(1, pairs // 25), 25, 11) for d in short(docs, 30)]
    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / "pairs.parquet", Path(folder) / "scored.parquet"
        pd.DataFrame(rows).to_parquet(source)
        started = time.perf_counter()
        frame = pd.DataFrame(rows)
        groups = frame.groupby("query", sort=False).indices
        queries = [Query(q, frame["document"].iloc[m].tolist()) for q, m in groups.items()]
        verdicts = engine.judge_many(queries)
        local = time.perf_counter() - started
        started = time.perf_counter()
        run_batch_file(str(source), str(output), BatchOptions(backend=model, workers=workers), lambda _: None)
        on_ray = time.perf_counter() - started
        scored = pd.read_parquet(output)
        want = {(q.query, d): j.score for q, judged in zip(queries, verdicts) for d, j in zip(q.documents, judged)}
        worst = max(abs(s - want[(q, d)]) for q, d, s in zip(scored["query"], scored["document"], scored["score"]))
    print(f"| {len(rows):,} pairs | {local:.1f} s ({len(rows) / local:.1f} pairs/s) | {on_ray:.1f} s "
          f"({len(rows) / on_ray:.1f} pairs/s), {workers} worker(s), Ray start-up included | {worst:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--documents", type=int, nargs="+", default=[1, 20, 100], help="request sizes to time")
    parser.add_argument("--no-batch", action="store_true", help="time the HTTP cost only")
    args = parser.parse_args()
    model = str(Path(args.model).resolve())
    engine = Qwen3Reranker(model=model)
    print(f"model {model}, {os.cpu_count()} cores, {engine.describe()['dtype']}")
    http_cost(model, engine, args.repeat, args.documents)
    if args.no_batch:
        return
    print()
    print("| pair file | in this process | python -m reranker batch on a local Ray | largest score difference |")
    print("|---|---|---|---|")
    batch_cost(model, engine, args.pairs, args.workers)


if __name__ == "__main__":
    main()
