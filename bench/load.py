"""Load test of the sidecar's /v1/rerank: 1, 4 and 16 concurrent clients, requests of 5 and of 50 documents.

Loopback only, bounded in requests and in time per cell. Either starts a sidecar on a model folder:

    python bench/load.py --model /path/to/model-folder

or targets one already running on this machine:

    python bench/load.py --url http://127.0.0.1:8502 [--api-key KEY]

Prints a markdown table: pairs/s, p50/p95 latency, errors, and the mean pairs per engine call (read from
/metrics: how many requests' pairs the queue merged into one forward-pass call).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests
from corpus import rerank_request

from reranker.core.addresses import is_loopback
from reranker.testing.sidecar_process import SidecarProcess


@dataclass
class Cell:
    clients: int
    docs: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    pairs: int = 0
    seconds: float = 0.0
    backend_calls: float = 0.0
    engine_pairs: float = 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="model folder (or hub id in the local cache): start a sidecar on it")
    target.add_argument("--url", help="a sidecar already running on this machine (loopback only)")
    parser.add_argument("--api-key", default=os.environ.get("RERANKER_API_KEY"))
    parser.add_argument("--device", default=None, help="RERANKER_DEVICE for a started sidecar (default auto)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--docs", type=int, nargs="+", default=[5, 50], help="documents per request")
    parser.add_argument("--requests", type=int, default=400, help="most requests per cell (all clients together)")
    parser.add_argument("--seconds", type=float, default=30.0, help="most seconds of sending per cell")
    parser.add_argument("--doc-words", type=int, default=80, help="words per document (about 1.3 tokens each)")
    parser.add_argument("--out", type=Path, help="also append the table to this markdown file")
    args = parser.parse_args(argv)

    server = None
    if args.model:
        data_dir = tempfile.mkdtemp(prefix="reranker-bench-")
        env = {"RERANKER_MODEL": args.model, "RERANKER_DATA_DIR": data_dir, "RERANKER_LOG_LEVEL": "warning"}
        if args.device:
            env["RERANKER_DEVICE"] = args.device
        if args.api_key:
            env["RERANKER_API_KEY"] = args.api_key
        server = SidecarProcess(env=env, log_path=Path(data_dir) / "server.log").start()
        url = server.url
    else:
        url = args.url.rstrip("/")
        if not _is_loopback(url):
            parser.error(f"--url must be a loopback address (127.0.0.1, localhost, ::1), not {url}")
    session = requests.Session()
    if args.api_key:
        session.headers["Authorization"] = f"Bearer {args.api_key}"
    try:
        health = server.wait_healthy(timeout=600) if server else session.get(f"{url}/health", timeout=30).json()
        cells = []
        for docs in args.docs:
            _send(session, url, rerank_request(random.Random(-docs), docs, args.doc_words))  # warm-up
            for clients in args.clients:
                cell = run_cell(session, url, clients, docs, args.requests, args.seconds, args.doc_words)
                cells.append(cell)
                print(f"  {clients:>2} clients x {docs:>3} docs: {cell.pairs / cell.seconds:8.2f} pairs/s, "
                      f"{len(cell.latencies)} ok, {cell.errors} errors", file=sys.stderr, flush=True)
        table = render(cells, health, args)
    finally:
        if server is not None:
            server.stop()
    print(table)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(table + "\n")
    return 1 if any(c.errors for c in cells) else 0


def run_cell(session: requests.Session, url: str, clients: int, docs: int, max_requests: int, max_seconds: float,
             doc_words: int) -> Cell:
    cell = Cell(clients, docs)
    budget = threading.Semaphore(max_requests)
    lock = threading.Lock()
    before = _engine_counters(session, url)
    started = time.perf_counter()
    deadline = started + max_seconds

    def client(n: int) -> None:
        rng = random.Random(n * 1000 + docs)
        while time.perf_counter() < deadline and budget.acquire(blocking=False):
            body = rerank_request(rng, docs, doc_words)
            t0 = time.perf_counter()
            error = _send(session, url, body)
            elapsed = time.perf_counter() - t0
            with lock:
                if error:
                    cell.errors += 1
                    cell.first_error = cell.first_error or error
                else:
                    cell.latencies.append(elapsed)
                    cell.pairs += docs

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cell.seconds = time.perf_counter() - started
    after = _engine_counters(session, url)
    cell.backend_calls = after[0] - before[0]
    cell.engine_pairs = after[1] - before[1]
    return cell


def _send(session: requests.Session, url: str, body: dict[str, object]) -> str:
    """'' on success, else what went wrong."""
    try:
        response = session.post(f"{url}/v1/rerank", json=body, timeout=600)
    except requests.RequestException as e:
        return f"{type(e).__name__}: {e}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if len(response.json()["results"]) != len(body["documents"]):
        return "wrong number of results"
    return ""


def _engine_counters(session: requests.Session, url: str) -> tuple[float, float]:
    """(engine calls, pairs) served for the API so far, from /metrics."""
    calls = pairs = 0.0
    try:
        text = session.get(f"{url}/metrics", timeout=30).text
    except requests.RequestException:
        return calls, pairs
    for line in text.splitlines():
        if line.startswith('reranker_engine_call_pairs_count{source="api"}'):
            calls = float(line.split()[-1])
        elif line.startswith('reranker_engine_call_pairs_sum{source="api"}'):
            pairs = float(line.split()[-1])
    return calls, pairs


def render(cells: list[Cell], health: dict[str, object], args: argparse.Namespace) -> str:
    lines = [
        f"model `{health.get('model')}` on {health.get('device')} ({health.get('dtype')}); "
        f"{platform.machine()} with {os.cpu_count()} CPUs; {args.doc_words // 2}-{args.doc_words * 3 // 2} words "
        f"per document; at most {args.requests} requests or {args.seconds:g} s per row",
        "",
        "| clients | docs/request | requests | errors | pairs/s | p50 ms | p95 ms | pairs per engine call |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        ok = sorted(c.latencies)
        p50 = statistics.median(ok) * 1000 if ok else float("nan")
        p95 = ok[min(len(ok) - 1, int(0.95 * len(ok)))] * 1000 if ok else float("nan")
        merged = c.engine_pairs / c.backend_calls if c.backend_calls else float("nan")
        lines.append(f"| {c.clients} | {c.docs} | {len(ok) + c.errors} | {c.errors} | {c.pairs / c.seconds:.2f} | "
                     f"{p50:.0f} | {p95:.0f} | {merged:.1f} |")
    errors = [f"{c.clients} clients x {c.docs} docs: {c.first_error}" for c in cells if c.errors]
    if errors:
        lines += ["", "First error per row:", *[f"- {e}" for e in errors]]
    return "\n".join(lines)


def _is_loopback(url: str) -> bool:
    return is_loopback(urlparse(url).hostname or "")


if __name__ == "__main__":
    raise SystemExit(main())
