"""Engine vs the model card's code on the full-size Qwen3-Reranker-0.6B shape (random weights, real tokenizer).

    python bench/bench_engine.py                       # W1 and W2, CPU float32, builds the model once
    python bench/bench_engine.py --device cuda --dtype bfloat16
    python bench/bench_engine.py --workloads W1 --reference-queries 4

Each measurement runs in a child process of its own, so peak memory is that implementation's alone.
W1: 1 query x 50 documents; W2: 32 queries x 20 documents; documents of 25-260 words, English and Chinese.
The engine is timed on the whole workload; the model card's code gets one padded batch per query (as the
card scores one list), optionally on the first N queries only (--reference-queries) when it is too slow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SHARED = ROOT.parent / "shared" / "models" / "qwen3-reranker-0.6b"
DEFAULT_MODEL_DIR = ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: build the random 0.6B)")
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2"], choices=["W1", "W2"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--reference-queries", type=int, default=None,
                        help="time the model card's code on the first N queries only")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    model = args.model or build_model()
    rows = []
    for workload in args.workloads:
        engine = run_child("engine", workload, model, args)
        rows.append(engine)
        if not args.skip_reference:
            reference = run_child("model_card", workload, model, args)
            n = len(reference["scores"])
            engine["max_abs_diff"] = max(abs(a - b) for a, b in zip(engine["scores"][:n], reference["scores"]))
            engine["speedup"] = engine["pairs_per_s"] / reference["pairs_per_s"]
            rows.append(reference)
    report(rows, args)


def build_model() -> Path:
    if (DEFAULT_MODEL_DIR / "config.json").exists():
        return DEFAULT_MODEL_DIR
    from reranker.testing.random_models import build_random_model

    if not SHARED.is_dir():
        sys.exit(f"need {SHARED} (the real tokenizer and config) to build the benchmark model; or pass --model")
    print(f"building the random-weight 0.6B model in {DEFAULT_MODEL_DIR} (once)", file=sys.stderr)
    return build_random_model(DEFAULT_MODEL_DIR, tokenizer_dir=SHARED, config_path=SHARED / "config.json")


def run_child(impl: str, workload: str, model: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", impl, workload, "--model", str(model), "--device", args.device,
               "--dtype", args.dtype]
    if args.reference_queries and impl == "model_card":
        command += ["--reference-queries", str(args.reference_queries)]
    print(f"running {impl} on {workload} ...", file=sys.stderr, flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{impl} on {workload} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(args: argparse.Namespace) -> None:
    import torch
    from corpus import WORKLOADS

    from reranker import Query, Qwen3Reranker
    from reranker.testing.model_card import model_card_scores

    impl, workload = args.child
    base_rss = rss_bytes("VmRSS")
    engine = Qwen3Reranker(model=str(args.model), device=args.device, dtype=args.dtype)
    weights = sum(p.numel() * p.element_size() for p in engine.model.parameters())
    body = sum(p.numel() for n, p in engine.model.named_parameters() if "embed_tokens" not in n)
    queries = WORKLOADS[workload]()
    if impl == "model_card" and args.reference_queries:
        queries = queries[: args.reference_queries]
    cuda = engine.device.type == "cuda"

    def run() -> list[float]:
        if impl == "engine":
            judged = engine.judge_many([Query(q, docs) for q, docs in queries])
            return [j.score for group in judged for j in group]
        return [s for q, docs in queries
                for s in model_card_scores(engine.model, engine.tokenizer, q, docs, plain_user_text=True)]

    warm_query, warm_docs = queries[0]
    if impl == "engine":
        engine.score(warm_query, warm_docs[:4])
    else:
        model_card_scores(engine.model, engine.tokenizer, warm_query, warm_docs[:4])
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    reset_peak_rss()
    started = time.perf_counter()
    scores = run()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    pairs = sum(len(docs) for _, docs in queries)
    encoded = [e for q, docs in queries for e in engine.encoder.encode(q, docs)]
    tokens = sum(len(e.input_ids) for e in encoded)
    result = {
        "impl": impl, "workload": workload, "queries": len(queries), "pairs": pairs, "tokens": tokens,
        "seconds": seconds, "pairs_per_s": pairs / seconds, "tokens_per_s": tokens / seconds,
        "weights_gb": weights / 1e9, "device": str(engine.device), "dtype": str(engine.dtype).removeprefix("torch."),
        "body_params": body, "scores": scores,
    }
    if cuda:
        result["peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
        result["device_name"] = torch.cuda.get_device_name()
    else:
        result["peak_gb"] = (rss_bytes("VmHWM") - base_rss) / 1e9
    print(json.dumps(result))


def rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def report(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\n{time.strftime('%Y-%m-%d')} · {platform.node()} · {platform.processor() or platform.machine()} · "
          f"{os.cpu_count()} cores · torch threads {__import__('torch').get_num_threads()}")
    print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}\n")
    print("| workload | code | device / dtype | pairs | prompt tokens | seconds | pairs/s | tokens/s | "
          "peak mem GB (weights GB) | max abs score diff | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        diff = f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else ""
        speedup = f"{r['speedup']:.2f}x" if "speedup" in r else ""
        print(f"| {r['workload']} | {r['impl']} | {r['device']} / {r['dtype']} | {r['pairs']} | {r['tokens']} | "
              f"{r['seconds']:.1f} | {r['pairs_per_s']:.2f} | {r['tokens_per_s']:.0f} | "
              f"{r['peak_gb']:.2f} ({r['weights_gb']:.2f}) | {diff} | {speedup} |")
    for r in rows:
        if r["impl"] == "engine" and "device_name" in r:
            peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in r["device_name"]), None)
            useful = 2 * r["body_params"] * r["tokens"] / r["seconds"] / 1e12
            share = f"{100 * useful / peak:.1f}% of {peak:.0f}" if peak else "unknown peak"
            print(f"{r['workload']} on {r['device_name']}: useful arithmetic {useful:.1f} TFLOP/s ({share} TFLOP/s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
