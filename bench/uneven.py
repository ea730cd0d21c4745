"""Uneven load on the sidecar: how long a small /v1/rerank waits behind a big request or a running job, and what
the slicing costs the big one.

Starts a sidecar on a model folder and measures, each phase after the last:
1. unloaded: small requests (5 documents) one after another: their median latency;
2. a big /api/rerank (--big-queries x 5 documents) alone: its pairs/s;
3. the same big request while a client sends a small request every --gap seconds: the small ones' median and
   worst latency, and the big one's pairs/s beside phase 2 (also net of the small ones' own engine time);
4. a job of --job-pairs pairs, with the same small client: the small ones' median beside phase 1, the job's pairs/s.

    python bench/uneven.py --model bench/out/tiny [--big-queries 2000] [--job-pairs 2000] [--no-slicing]

--no-slicing sets the queue's caps so high that it takes each request whole, as it did before slicing.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
from corpus import rerank_request

from reranker.testing.sidecar_process import SidecarProcess

SMALL_DOCS = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--big-queries", type=int, default=2000)
    parser.add_argument("--job-pairs", type=int, default=10000, help="at most the big request's pairs")
    parser.add_argument("--doc-words", type=int, default=30)
    parser.add_argument("--small", type=int, default=30, help="small requests in the unloaded phase")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between a small client's requests")
    parser.add_argument("--rounds", type=int, default=3, help="big requests alone and beside the small client, each")
    parser.add_argument("--no-slicing", action="store_true")
    args = parser.parse_args(argv)

    data_dir = tempfile.mkdtemp(prefix="reranker-uneven-")
    model = str(Path(args.model).resolve()) if Path(args.model).is_dir() else args.model  # the server has its own cwd
    env = {"RERANKER_MODEL": model, "RERANKER_DATA_DIR": data_dir, "RERANKER_LOG_LEVEL": "warning",
           "RERANKER_MAX_REQUEST_PAIRS": str(args.big_queries * SMALL_DOCS), "RERANKER_MAX_JOB_PAIRS": "1000000",
           "RERANKER_MAX_BODY_BYTES": str(200 * 2**20), "RERANKER_MAX_JOB_BYTES": str(200 * 2**20)}
    if args.no_slicing:
        env.update({"RERANKER_BATCH_MAX_PAIRS": "100000000", "RERANKER_BATCH_MAX_CHARS": "100000000000",
                    "RERANKER_SLICE_SECONDS": "100000"})
    rng = random.Random(7)
    big = {"queries": [], "documents": []}
    for _ in range(args.big_queries):
        body = rerank_request(rng, SMALL_DOCS, args.doc_words)
        big["queries"].append(body["query"])
        big["documents"].append(body["documents"])
    job_queries = min(max(1, args.job_pairs // SMALL_DOCS), args.big_queries)
    job = {"queries": big["queries"][:job_queries], "documents": big["documents"][:job_queries]}

    with SidecarProcess(env=env, log_path=Path(data_dir) / "server.log") as server:
        health = server.wait_healthy(timeout=600)
        session = requests.Session()
        small = [rerank_request(random.Random(n), SMALL_DOCS, args.doc_words) for n in range(args.small)]
        _post(session, server.url, "/v1/rerank", small[0])  # warm-up
        unloaded = [_timed(session, server.url, "/v1/rerank", body) for body in small]

        alone_runs, shared_runs, beside_big = [], [], SmallClient(server.url, args.doc_words, args.gap)
        for _ in range(args.rounds):  # interleaved, so that drift on the machine touches both alike
            alone_runs.append(_timed(session, server.url, "/api/rerank", big))
            with beside_big:
                shared_runs.append(_timed(session, server.url, "/api/rerank", big))
        alone, shared = statistics.median(alone_runs), statistics.median(shared_runs)

        with SmallClient(server.url, args.doc_words, args.gap) as beside_job:
            created = _post(session, server.url, "/api/jobs", job)
            job_seconds = _wait_for_job(session, server.url, created["id"])

    pairs, job_total = args.big_queries * SMALL_DOCS, job_queries * SMALL_DOCS
    p50 = statistics.median(unloaded)
    print(f"model `{health['model']}` on {health['device']} ({health['dtype']}), {platform.machine()} with "
          f"{os.cpu_count()} CPUs; {'no slicing' if args.no_slicing else 'slicing on (defaults)'}; "
          f"documents of about {args.doc_words} words\n")
    print("| what | figure |\n|---|---:|")
    print(f"| small /v1/rerank alone, median ms ({len(unloaded)} requests) | {p50 * 1000:.0f} |")
    print(f"| big /api/rerank alone ({pairs:,} pairs), pairs/s, median of {args.rounds} | {pairs / alone:.1f} |")
    print(f"| big /api/rerank with a small client beside it, pairs/s, median of {args.rounds} | {pairs / shared:.1f} "
          f"({pairs / shared / (pairs / alone) - 1:+.1%}) |")
    # the small requests' own engine time (each as long as alone) is the big one's to give, not a cost of sharing
    net = shared - len(beside_big.latencies) / args.rounds * p50
    print(f"| the same, net of the small requests' own time (each taken as long as alone), pairs/s | "
          f"{pairs / net:.1f} ({pairs / net / (pairs / alone) - 1:+.1%}) |")
    print(f"| small /v1/rerank beside the big one, median / worst ms ({len(beside_big.latencies)} requests) | "
          f"{statistics.median(beside_big.latencies) * 1000:.0f} / {max(beside_big.latencies) * 1000:.0f} |")
    print(f"| job ({job_total:,} pairs) with the small client beside it, pairs/s | {job_total / job_seconds:.1f} |")
    print(f"| small /v1/rerank while the job runs, median ms ({len(beside_job.latencies)} requests) | "
          f"{statistics.median(beside_job.latencies) * 1000:.0f} "
          f"({statistics.median(beside_job.latencies) / p50:.2f}x unloaded) |")
    return 0


class SmallClient:
    """A client sending a small /v1/rerank every `gap` seconds (after the last answer) until the block ends."""

    def __init__(self, url: str, doc_words: int, gap: float) -> None:
        self.url, self.doc_words, self.gap = url, doc_words, gap
        self.latencies: list[float] = []
        self._stop = threading.Event()

    def __enter__(self) -> SmallClient:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        session, n = requests.Session(), 0
        while not self._stop.wait(self.gap):
            n += 1
            self.latencies.append(_timed(session, self.url, "/v1/rerank",
                                         rerank_request(random.Random(10_000 + n), SMALL_DOCS, self.doc_words)))


def _post(session: requests.Session, url: str, path: str, body: dict) -> dict:
    response = session.post(f"{url}{path}", json=body, timeout=3600)
    response.raise_for_status()
    return response.json()


def _timed(session: requests.Session, url: str, path: str, body: dict) -> float:
    started = time.perf_counter()
    _post(session, url, path, body)
    return time.perf_counter() - started


def _wait_for_job(session: requests.Session, url: str, job_id: str) -> float:
    while True:
        job = session.get(f"{url}/api/jobs/{job_id}", timeout=60).json()
        if job["status"] not in ("queued", "running"):
            if job["status"] != "done":
                raise RuntimeError(f"the job ended {job['status']}: {job.get('error')}")
            return job["finished_at"] - job["started_at"]
        time.sleep(0.2)


if __name__ == "__main__":
    raise SystemExit(main())
