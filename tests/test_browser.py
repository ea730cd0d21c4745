"""The workbench in a real browser: `streamlit run app.py` on a loopback port, driven by headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
QUERY = "What is the capital of China?"
ATTACK = "<img src=x onerror=alert(1)>"
DOCUMENTS = ["Shanghai is the largest city in China.", ATTACK, "The capital of China is Beijing.",
             "北京是中国的首都。", "Gravity pulls things down."]


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.fail("Chromium is not installed, so the browser test cannot run: install Debian's package "
                    "(`apt-get install chromium`; `./start.sh test` does it when run as root).")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def workbench_url(tiny_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DEVICE": "cpu"}
    env.pop("RERANKER_API_URL", None)
    log_path = tmp_path / "streamlit.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"streamlit exited with {server.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer in 90 s:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_rerank_in_a_real_browser(workbench_url, reranker, output_dir):
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    expected = reranker.rank(QUERY, DOCUMENTS)
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(workbench_url)
            expect(page.get_by_text("Engine ready")).to_be_visible(timeout=90_000)

            query = page.get_by_label("Query")
            query.fill(QUERY)
            query.press("Enter")
            documents = page.get_by_label("Documents (one per line)")
            documents.fill("\n".join(DOCUMENTS))
            documents.press("Control+Enter")
            expect(page.get_by_text(f"{len(DOCUMENTS)} documents")).to_be_visible(timeout=30_000)
            page.get_by_role("button", name="Rerank").click()

            top = page.locator(".rank-card.top")
            expect(top).to_have_count(1, timeout=60_000)
            expect(page.locator(".rank-card")).to_have_count(len(DOCUMENTS))
            expect(top.locator(".doc-text")).to_have_text(expected[0].document)
            expect(top.locator(".rank")).to_have_text("#1")
            assert top.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(11, 61, 145)"
            texts = page.locator(".rank-card .doc-text").all_inner_texts()
            assert texts == [d.document for d in expected]
            assert page.locator(".rank-card img").count() == 0
            page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=30_000)
            page.get_by_role("heading", name="Qwen-Ranker Pro").scroll_into_view_if_needed()
            page.screenshot(path=str(output_dir / "workbench-main.png"))
            assert dialogs == []
        finally:
            browser.close()
