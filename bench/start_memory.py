"""./start.sh's memory and a 20-document rerank from the page: one process (the pages and the API on one port, the
page scoring through the API's queue in the same process, as ./start.sh runs now) against two (the API alone,
`python -m reranker serve`, and `streamlit run app.py` scoring on it over HTTP, as ./start.sh ran before).

    .venv/bin/python bench/start_memory.py --model bench/out/qwen3-reranker-0.6b-random [--layout one|two]

Memory is PSS summed over every process the layout starts, after the page's reranks and one API call. The page's
time runs from the Rerank click to the first card, in a fresh browser session each round (so nothing is cached).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

from reranker.testing.sidecar_process import ROOT, free_port

LOG = Path("/tmp/start-memory.log")
DOCUMENTS = [f"Candidate {n}: " + text for n, text in enumerate([
    "Beijing is the capital of the People's Republic of China.", "Shanghai is the largest city in China.",
    "The Great Wall stretches across northern China.", "Gravity pulls objects towards each other.",
    "北京是中国的首都。", "Paris is the capital of France.", "The Forbidden City is in Beijing.",
    "Tokyo is the capital of Japan.", "China's capital moved to Beijing in the Ming dynasty.",
    "Nanjing was once the capital of China.", "Rice is a staple food in southern China.",
    "The Yangtze is the longest river in Asia.", "Beijing hosted the 2008 Summer Olympics.",
    "Hong Kong is a special administrative region.", "The capital of a country is its seat of government.",
    "Xi'an was the capital of several dynasties.", "Mount Everest lies on the border of China and Nepal.",
    "Mandarin is the official language of China.", "Canberra is the capital of Australia.",
    "Tiananmen Square is in the centre of Beijing."])]
QUERY = "What is the capital of China?"


def pss_bytes(session: int) -> tuple[int, list[tuple[str, int]]]:
    """PSS summed over the live processes of a session, and each process's share."""
    out = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True, check=True).stdout
    shares = []
    for line in out.splitlines():
        pid, sid, args = line.split(None, 2)
        if int(sid) != session:
            continue
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        kb = next(int(row.split()[1]) for row in rollup.splitlines() if row.startswith("Pss:"))
        shares.append((args[:90], kb * 1024))
    return sum(b for _, b in shares), shares


def wait_for(url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not answer in {timeout:.0f} s")


def rerank_from_the_page(ui: str, rounds: int) -> list[float]:
    """Seconds from the Rerank click to the first card, for 20 pasted documents, each round in a new session."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for n in range(rounds):
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(ui)
            page.get_by_text(re.compile("(Engine|Server) ready")).wait_for(timeout=600_000)
            page.get_by_label("Query").fill(f"{QUERY} ({n})")  # another query each round: nothing cached
            page.get_by_label("Query").press("Enter")
            page.get_by_label("Documents (one per line)").fill("\n".join(DOCUMENTS))
            page.get_by_label("Documents (one per line)").press("Control+Enter")
            page.get_by_text(f"{len(DOCUMENTS)} documents").wait_for(timeout=30_000)
            page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=30_000)
            started = time.perf_counter()
            page.get_by_role("button", name="Rerank", exact=True).click()
            page.locator(".rank-card").first.wait_for(timeout=600_000)
            times.append(time.perf_counter() - started)
            page.close()
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--layout", choices=("one", "two"), default="one")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ui_port, api_port = free_port(), free_port()
    env = {**os.environ, "RERANKER_MODEL": str(Path(args.model).resolve()), "RERANKER_API_KEY": "",
           "RERANKER_DATA_DIR": f"/tmp/start-memory-{api_port}", "RERANKER_PORT": str(ui_port),
           "STREAMLIT_SERVER_HEADLESS": "true", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    for name in ("RERANKER_SERVER", "RERANKER_API_URL", "RERANKER_API_PORT", "RERANKER_HOST"):
        env.pop(name, None)
    if args.layout == "two":
        python = sys.executable
        command = (f"{python} -m reranker serve --port {api_port} </dev/null & "
                   f"RERANKER_SERVER=http://127.0.0.1:{api_port} {python} -m streamlit run app.py --server.port "
                   f"{ui_port} --server.address 127.0.0.1 --server.showEmailPrompt false </dev/null & wait")
        launched = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env, start_new_session=True,
                                    stdout=LOG.open("wb"), stderr=subprocess.STDOUT)
    else:
        api_port = ui_port
        launched = subprocess.Popen(["./start.sh"], cwd=ROOT, env=env, start_new_session=True,
                                    stdout=LOG.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{api_port}/health")
        wait_for(f"http://127.0.0.1:{ui_port}/_stcore/health")
        print(f"{args.layout} process(es) answer; reranking {len(DOCUMENTS)} documents from the page", flush=True)
        times = rerank_from_the_page(f"http://127.0.0.1:{ui_port}", args.rounds)
        api = requests.post(f"http://127.0.0.1:{api_port}/v1/rerank", timeout=300,
                            json={"query": QUERY, "documents": DOCUMENTS[:2]})
        api.raise_for_status()
        time.sleep(2)
        total, shares = pss_bytes(launched.pid)
        for args_, size in sorted(shares, key=lambda s: -s[1]):
            print(f"{size / 2**30:6.2f} GiB  {args_}")
        print(f"PSS total: {total / 2**30:.2f} GiB ({total / 1e9:.2f} GB); {len(DOCUMENTS)} documents from the page: "
              f"median {statistics.median(times):.2f} s of {', '.join(f'{t:.2f}' for t in times)}")
    finally:
        os.killpg(launched.pid, signal.SIGTERM)
        launched.wait(30)


if __name__ == "__main__":
    main()
