"""Where an interactive request's time goes beyond the engine: 10 short documents (about 100 tokens each) through
/v1/rerank, against the engine's own time for the same request, split into its steps.

    .venv/bin/python bench/end_to_end.py [--model bench/out/qwen3-reranker-0.6b-random] [--dtype int8] [--rounds 5]

Two child processes, one after the other (so they never share the CPU): one loads the engine and times a request's
steps in process (tokenizing; the query prefix's pass; the documents' passes; the whole `score`); one starts the
sidecar (RERANKER_DTYPE as asked) and times the same requests from an HTTP client, with the server's own account
(/metrics: the handler's time, the engine call's time). Each round sends a new query, so its prefix is computed every
time, as for a user. Times are medians of the rounds.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import REQUEST_WORDS

ROOT = Path(__file__).resolve().parents[1]


def requests_of(rounds: int, seed: int = 3) -> list[tuple[str, list[str]]]:
    """`rounds` (query, 10 documents of 70-80 words: about 100 tokens each) requests, each with a new query."""
    rng = random.Random(seed)

    def text(n: int) -> str:
        return " ".join(rng.choice(REQUEST_WORDS) for _ in range(n))

    return [(f"{text(10)} ({n})", [text(rng.randint(70, 80)) for _ in range(10)]) for n in range(rounds + 1)]


def in_process(model: str, dtype: str, rounds: int) -> dict[str, float]:
    import torch

    from reranker import Qwen3Reranker

    engine = Qwen3Reranker(model=model, device="cpu", dtype=dtype)
    work = requests_of(rounds)
    engine.score(*work[0])  # warm-up: the instruction prefix is kept from here on, as in a running server
    steps: dict[str, list[float]] = {"tokenize": [], "prefix_pass": [], "score": [], "tokens": []}
    for query, documents in work[1:]:
        started = time.perf_counter()
        pairs = engine.encoder.encode(query, documents)
        steps["tokenize"].append(time.perf_counter() - started)
        steps["tokens"].append(statistics.mean(len(p.input_ids) for p in pairs))
        prefix = engine.encoder.shared_prefix(query, None)
        instruction = engine.encoder.instruction_prefix(None)
        with torch.inference_mode():
            base = engine._instruction_prefix_key_values(tuple(instruction))
            started = time.perf_counter()
            engine._run_on_instruction_prefix(tuple(instruction), [tuple(prefix[len(instruction):])])
            steps["prefix_pass"].append(time.perf_counter() - started)
        del base
        started = time.perf_counter()
        engine.score(query + " ", documents)  # a query not seen yet: its prefix is computed within
        steps["score"].append(time.perf_counter() - started)
    return {k: statistics.median(v) for k, v in steps.items()}


def over_http(model: str, dtype: str, rounds: int) -> dict[str, float]:
    import requests

    from reranker.testing.sidecar_process import SidecarProcess

    data = tempfile.mkdtemp(prefix="reranker-e2e-")
    env = {"RERANKER_MODEL": model, "RERANKER_DATA_DIR": data, "RERANKER_LOG_LEVEL": "warning",
           "RERANKER_DTYPE": dtype}
    with SidecarProcess(env=env, log_path=Path(data) / "server.log") as server:
        server.wait_healthy(timeout=900)
        session = requests.Session()
        work = requests_of(rounds)
        times, handler, engine = [], [], []
        for n, (query, documents) in enumerate(work):
            before = _metrics(session, server.url)
            started = time.perf_counter()
            answer = session.post(f"{server.url}/v1/rerank", json={"query": query + " ", "documents": documents},
                                  timeout=600)
            elapsed = time.perf_counter() - started
            answer.raise_for_status()
            after = _metrics(session, server.url)
            if n:  # the first is the warm-up
                times.append(elapsed)
                handler.append(after["handler"] - before["handler"])
                engine.append(after["engine"] - before["engine"])
    return {"round_trip": statistics.median(times), "handler": statistics.median(handler),
            "engine_call": statistics.median(engine)}


def _metrics(session, url: str) -> dict[str, float]:
    out = {"handler": 0.0, "engine": 0.0}
    for line in session.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("reranker_http_request_seconds_sum") and "rerank" in line:
            out["handler"] += float(line.split()[-1])
        elif line.startswith('reranker_engine_call_seconds_sum{source="api"}'):
            out["engine"] = float(line.split()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"))
    parser.add_argument("--dtype", default="int8")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=["engine", "http"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = in_process if args.child == "engine" else over_http
        print(json.dumps(run(args.model, args.dtype, args.rounds)))
        return
    measured: dict[str, float] = {}
    for child in ("engine", "http"):
        done = subprocess.run([sys.executable, __file__, "--child", child, "--model", args.model, "--dtype",
                               args.dtype, "--rounds", str(args.rounds)], capture_output=True, text=True, timeout=3000)
        if done.returncode != 0:
            sys.exit(f"{child} failed:\n{done.stderr[-3000:]}")
        measured.update(json.loads(done.stdout.strip().splitlines()[-1]))
    m = measured
    rows = [
        ("tokenizing the 10 prompts", m["tokenize"]),
        ("the query prefix's pass", m["prefix_pass"]),
        ("the documents' passes and the head (the rest of `score`)", m["score"] - m["tokenize"] - m["prefix_pass"]),
        ("**the engine's own time** (`score` in process)", m["score"]),
        ("the engine call in the server (its /metrics)", m["engine_call"]),
        ("the handler around it: parsing, the queue, the answer", m["handler"] - m["engine_call"]),
        ("HTTP on loopback and the client", m["round_trip"] - m["handler"]),
        ("**end to end** (the client's round trip)", m["round_trip"]),
    ]
    print(f"{args.dtype}, 10 documents of about {m['tokens']:.0f} prompt tokens, median of {args.rounds} rounds")
    print("| step | ms |\n|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1000:,.0f} |")
    print(f"end to end / engine: {m['round_trip'] / m['score']:.2f}x")


if __name__ == "__main__":
    main()
