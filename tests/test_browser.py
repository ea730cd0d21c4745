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
from contextlib import contextmanager
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


@contextmanager
def streamlit_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port; yields its URL once it answers, stops it after."""
    port = free_port()
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


@pytest.fixture
def workbench_url(tiny_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    env = {**os.environ, "RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DEVICE": "cpu"}
    for name in ("RERANKER_API_URL", "RERANKER_SERVER"):
        env.pop(name, None)
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        yield url


@pytest.fixture
def browser() -> Iterator[object]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_rerank_in_a_real_browser(workbench_url, browser, reranker, output_dir):
    from playwright.sync_api import expect

    expected = reranker.rank(QUERY, DOCUMENTS)
    dialogs: list[str] = []
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


def test_a_batch_handed_to_the_sidecar_is_followed_to_its_download(tiny_model_dir, keyed_sidecar, browser, tmp_path):
    from playwright.sync_api import expect

    env = {**os.environ, "RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DEVICE": "cpu",
           "RERANKER_SERVER": keyed_sidecar.url, "RERANKER_SERVER_KEY": keyed_sidecar.env["RERANKER_API_KEY"]}
    table = tmp_path / "pairs.csv"
    table.write_text("query,document\n" + "".join(f"{QUERY},{d}\n" for d in DOCUMENTS if "," not in d),
                     encoding="utf-8")
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.goto(url)
        page.get_by_role("link", name="CSV batches").click()
        page.locator('input[type="file"]').set_input_files(str(table))
        page.get_by_role("button", name="Send to sidecar as a job").click()
        # the job runs for a few seconds (0.5 s between chunks of 2 pairs): the page follows it by itself
        expect(page.get_by_text("pairs scored.")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("button", name="Download the job's CSV")).to_be_visible()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download the job's CSV").click()
        rows = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
        assert rows[0] == "query,document,score,logit,rank" and len(rows) == 1 + len(DOCUMENTS)


def test_an_offline_start_says_so_in_seconds_and_clicks_never_wait(browser, tmp_path, output_dir):
    """The default hub model, with no hub to reach and nothing cached: the page and the error come within seconds,
    and a sample click afterwards fills the inputs at once (the failure is remembered, not retried)."""
    from playwright.sync_api import expect

    with socket.socket() as s:  # a loopback port nobody listens on, as the hub's address
        s.bind(("127.0.0.1", 0))
        dead_hub = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {**os.environ, "RERANKER_MODEL": "Qwen/Qwen3-Reranker-0.6B", "HF_ENDPOINT": dead_hub,
           "HF_HOME": str(tmp_path / "hf-home")}
    for name in ("RERANKER_API_URL", "RERANKER_SERVER", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE"):
        env.pop(name, None)
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.goto(url)
        expect(page.get_by_label("Query")).to_be_visible(timeout=10_000)
        expect(page.get_by_text("Engine not loaded")).to_be_visible(timeout=10_000)
        error = page.get_by_text("Could not load the reranker model 'Qwen/Qwen3-Reranker-0.6B'")
        expect(error).to_be_visible()
        assert "`" not in error.inner_text() and ".." not in error.inner_text()
        page.get_by_role("button", name="English · capital of China").click()
        expect(page.get_by_label("Query")).to_have_value(QUERY, timeout=5_000)
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        page.screenshot(path=str(output_dir / "workbench-offline.png"))
