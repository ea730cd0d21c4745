"""Where the exact engine's time goes on this CPU: torch.profiler over the 16-document mixed workload (full-size
shape), operators grouped by what they are for, against the float32 matrix-product rate measured in this process.

    .venv/bin/python bench/profile_engine.py [--model bench/out/qwen3-reranker-0.6b-random] [--dtype float32]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch
from corpus import workload
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {
    "matrix products (linear layers)": ("aten::addmm", "aten::mm", "aten::_int_mm", "aten::linear", "aten::matmul",
                                        "aten::bmm"),
    "attention": ("aten::scaled_dot_product_attention", "aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_attention_math", "aten::softmax", "aten::_softmax", "aten::baddbmm"),
    "norms and activations": ("aten::pow", "aten::mean", "aten::rsqrt", "aten::silu", "aten::rms_norm",
                              "aten::_fused_rms_norm"),
    "copies, padding and the cache": ("aten::cat", "aten::copy_", "aten::pad", "aten::constant_pad_nd",
                                      "aten::contiguous", "aten::clone", "aten::expand", "aten::index",
                                      "aten::to", "aten::_to_copy"),
    "elementwise (rotary, residuals, masks, quantizing)": ("aten::mul", "aten::add", "aten::neg", "aten::sub",
                                                           "aten::div", "aten::round", "aten::abs", "aten::amax",
                                                           "aten::where", "aten::__and__", "aten::__or__",
                                                           "aten::ge", "aten::lt", "aten::le", "aten::clamp"),
}


def mm_rate() -> float:
    """GFLOP/s of a float32 matrix product of the model's shape (300 x 1024 @ 1024 x 3072) in this process."""
    a, b = torch.randn(300, 1024), torch.randn(1024, 3072)
    a @ b
    started, n = time.perf_counter(), 20
    for _ in range(n):
        a @ b
    return 2 * 300 * 1024 * 3072 * n / (time.perf_counter() - started) / 1e9


def main() -> None:
    from reranker import Qwen3Reranker

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"))
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    engine = Qwen3Reranker(model=args.model, device="cpu", dtype=args.dtype)
    [(query, documents)] = workload(1, 16, seed=7)
    engine.score("warm-up", documents[:2])
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        judged = engine.judge(query, documents)
    wall = time.perf_counter() - started
    prefix = len(engine.encoder.shared_prefix(query, None))
    tokens = sum(j.tokens for j in judged) - (len(judged) - 1) * prefix  # the shared prefix runs once
    seconds: dict[str, float] = defaultdict(float)
    others: dict[str, float] = {}
    for event in prof.key_averages():
        group = next((g for g, names in GROUPS.items() if event.key in names), None)
        if group is not None:
            seconds[group] += event.self_cpu_time_total / 1e6
        else:
            others[event.key] = event.self_cpu_time_total / 1e6
    rate = mm_rate()
    body = sum(p.numel() for p in engine._decoder.parameters()) - engine._decoder.embed_tokens.weight.numel()
    if args.dtype == "int8":
        body += sum(m.weight_t.numel() for m in engine._decoder.modules() if hasattr(m, "weight_t"))
    useful = 2 * body * tokens / 1e9
    print(f"{args.dtype}: {wall:.2f} s for 16 documents ({tokens:,} prompt tokens computed, the shared prefix once); "
          f"{useful:.0f} GFLOP of linear-layer arithmetic at the float32 rate measured here "
          f"({rate:.0f} GFLOP/s) would take {useful / rate:.2f} s: {useful / rate / wall:.0%} of the roofline")
    for group, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {group}: {s:.2f} s ({s / wall:.0%})")
    print(f"  everything else (Python, dispatch, the tokenizer): {wall - sum(seconds.values()):.2f} s; its largest "
          "operators: " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:5]))


if __name__ == "__main__":
    main()
