"""Memory of the workbench + sidecar pair, as ./start.sh runs them: PSS summed over every process they start,
after one rerank from the page (driven in headless Chromium) and one API call.

    .venv/bin/python bench/start_memory.py --model bench/out/qwen3-reranker-0.6b-random
    .venv/bin/python bench/start_memory.py --model ... --checkout /tmp/before --two-processes

By default it runs this checkout's ./start.sh. `--two-processes` instead starts the two commands the
./start.sh of an older checkout (given with --checkout) ran, `python -m reranker serve` and `streamlit run app.py`
with RERANKER_API_URL, so the figure before one copy of the weights can be measured with this venv.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from reranker.testing.sidecar_process import ROOT, free_port

LOG = Path("/tmp/start-memory.log")


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


def rerank_from_the_page(ui: str) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(ui)
        page.get_by_text(re.compile("(Engine|Server) ready")).wait_for(timeout=600_000)
        page.get_by_role("button", name="English · capital of China").click()
        started = time.perf_counter()
        page.get_by_role("button", name="Rerank", exact=True).click()
        page.locator(".rank-card").first.wait_for(timeout=600_000)
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--checkout", default=str(ROOT))
    parser.add_argument("--two-processes", action="store_true")
    args = parser.parse_args()
    checkout = Path(args.checkout).resolve()
    ui_port, api_port = free_port(), free_port()
    env = {**os.environ, "RERANKER_MODEL": str(Path(args.model).resolve()), "RERANKER_API_KEY": "",
           "RERANKER_DATA_DIR": f"/tmp/start-memory-{api_port}", "RERANKER_UI_PORT": str(ui_port),
           "RERANKER_API_PORT": str(api_port), "STREAMLIT_SERVER_HEADLESS": "true",
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    for name in ("RERANKER_SERVER", "RERANKER_API_URL"):
        env.pop(name, None)
    if args.two_processes:
        python = sys.executable
        command = (f"{python} -m reranker serve --port {api_port} </dev/null & "
                   f"RERANKER_API_URL=http://127.0.0.1:{api_port} {python} -m streamlit run app.py --server.port "
                   f"{ui_port} --server.address 127.0.0.1 --server.showEmailPrompt false </dev/null & wait")
        launched = subprocess.Popen(["bash", "-c", command], cwd=checkout, env=env, start_new_session=True,
                                    stdout=LOG.open("wb"), stderr=subprocess.STDOUT)
    else:
        launched = subprocess.Popen(["./start.sh"], cwd=checkout, env=env, start_new_session=True,
                                    stdout=LOG.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{api_port}/health")
        wait_for(f"http://127.0.0.1:{ui_port}/_stcore/health")
        print("both answer; reranking from the page", flush=True)
        page_seconds = rerank_from_the_page(f"http://127.0.0.1:{ui_port}")
        api = requests.post(f"http://127.0.0.1:{api_port}/v1/rerank", timeout=300,
                            json={"query": "What is the capital of China?",
                                  "documents": ["Beijing is the capital.", "Gravity pulls things down."]})
        api.raise_for_status()
        time.sleep(2)
        total, shares = pss_bytes(launched.pid)
        for args_, size in sorted(shares, key=lambda s: -s[1]):
            print(f"{size / 2**30:6.2f} GiB  {args_}")
        print(f"PSS total: {total / 2**30:.2f} GiB ({total / 1e9:.2f} GB); rerank from the page {page_seconds:.1f} s")
    finally:
        os.killpg(launched.pid, signal.SIGTERM)
        launched.wait(30)


if __name__ == "__main__":
    main()
