"""Start the workbench (`streamlit run app.py`) as a child process on a free loopback port, for browser tests and
benchmarks."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reranker.testing.sidecar_process import ROOT, free_port


@contextmanager
def workbench_process(env: dict[str, str], log_path: Path, timeout: float = 90.0) -> Iterator[str]:
    """`streamlit run app.py` with exactly `env`; yields its URL once it answers, stops it after.

    Raises RuntimeError, with the log, when it exits or does not answer within `timeout` seconds."""
    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"streamlit exited with {server.returncode}:\n"
                                   f"{log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer in {timeout:.0f} s:\n"
                                   f"{log_path.read_text(errors='replace')}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def file_input(page, label: str):
    """The `<input type=file>` of the Streamlit uploader labelled `label`: found by its label, not as the page's
    first file input, so it cannot hit another page's uploader that is still on screen while a link is followed."""
    uploader = page.get_by_test_id("stFileUploader").filter(has_text=label)
    uploader.wait_for(state="attached", timeout=30_000)
    return uploader.locator('input[type="file"]')
