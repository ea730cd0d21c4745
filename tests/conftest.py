"""Every test runs on a tiny random-weight Qwen3 built here, once per session.

With RERANKER_TEST_TOKENIZER pointing at a tokenizer folder (CI: the real Qwen3 tokenizer) the model uses
it; without, a small byte-level tokenizer is built, so a fresh clone anywhere passes too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from reranker.testing.random_models import TINY_SHAPE, build_random_model  # noqa: E402

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
SCORE_TOLERANCE = 1e-5
"""The project's promise (README, "Exactly the model card"): a score through any backend, any grouping into forward
passes, on any CPU, is the engine's within this. Float32 sums change in their last bits with how pairs are grouped
into passes and with the CPU's kernels (AVX2 or AVX-512): tests never ask for more than the promise."""
LOGIT_TOLERANCE = 1e-4
"""Logits are unbounded (about ±30 for saturated scores) and float32 holds about 7 digits of them: 1e-4 absolute. A
difference of two logits (an explanation's delta) is held to twice this."""


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = os.environ.get("RERANKER_TEST_TOKENIZER")
    dest = tmp_path_factory.mktemp("models") / "tiny-qwen3-reranker"
    build_random_model(dest, tokenizer_dir=Path(tokenizer) if tokenizer else None, init_std=0.5, **TINY_SHAPE)
    os.environ["RERANKER_MODEL"] = str(dest)
    return dest


@pytest.fixture(scope="session")
def reranker(tiny_model_dir: Path):
    from reranker import Qwen3Reranker

    return Qwen3Reranker(model=str(tiny_model_dir), device="cpu")


SIDECAR_KEY = "workbench-test-key"


@pytest.fixture(scope="session")
def keyed_sidecar(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A live server on the tiny model that wants SIDECAR_KEY, with jobs slow enough to watch them run: the pages and
    the API on one port, as ./start.sh runs it."""
    from reranker.testing.sidecar_process import SidecarProcess

    data = tmp_path_factory.mktemp("keyed-sidecar")
    env = {"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(data), "RERANKER_API_KEY": SIDECAR_KEY,
           "RERANKER_JOB_CHUNK_PAIRS": "2", "RERANKER_JOB_CHUNK_DELAY": "0.5"}
    with SidecarProcess(env=env, log_path=data / "server.log", command="workbench") as server:
        server.wait_healthy()
        yield server


OPEN_SIDECAR_CHUNK = 3


@pytest.fixture(scope="session")
def open_sidecar(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A live server on the tiny model without an API key, with small limits for the job and fuzz tests: the pages and
    the API on one port, as ./start.sh runs it."""
    from reranker.testing.sidecar_process import SidecarProcess

    data = tmp_path_factory.mktemp("open-sidecar")
    env = {"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(data), "RERANKER_API_KEY": "",
           "RERANKER_JOB_CHUNK_PAIRS": str(OPEN_SIDECAR_CHUNK), "RERANKER_JOB_CHUNK_DELAY": "0.05",
           "RERANKER_MAX_JOB_BYTES": "300000", "RERANKER_MAX_JOB_PAIRS": "500", "RERANKER_MAX_DOCUMENT_CHARS": "5000"}
    with SidecarProcess(env=env, log_path=data / "server.log", command="workbench") as server:
        server.wait_healthy()
        yield server


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Artifacts a person may want to look at (screenshots); kept after the run."""
    path = ROOT / "test-output"
    path.mkdir(exist_ok=True)
    return path


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Debian Chromium for every browser test (Playwright drives it); tests open their own pages."""
    executable = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if executable is None:
        pytest.fail("Chromium is not installed, so the browser tests cannot run: install Debian's package "
                    "(`apt-get install chromium`; `./start.sh test` does it when run as root).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def workbench_model(tiny_model_dir: Path) -> Path:
    """The tiny model already open in the workbench of this process (AppTest runs the app here), as a user finds it
    once the background load has finished: the first page run then shows it ready."""
    from reranker.workbench import frame

    opening = frame.openings().get((str(tiny_model_dir), None))
    assert opening.wait(120) and opening.error is None, opening.error
    return tiny_model_dir


@pytest.fixture
def opened_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], AppTest]:
    """Makes an AppTest of app.py whose first run shows its backend opened (or failed), as a user sees the page
    once the background opening has ended: the first run starts it, this waits for it, and a fresh AppTest (the
    frame is drawn on a script's first run only) shows the outcome."""
    from streamlit.testing.v1 import AppTest

    from reranker.workbench import frame

    monkeypatch.setenv("RERANKER_DATA_DIR", str(tmp_path / "data"))  # saved sessions and drafts kept apart per test

    def open_app() -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        spec = at.session_state["frame_backend"] if "frame_backend" in at.session_state else None
        if spec is None or at.sidebar.success or at.sidebar.error:  # the run showed the outcome
            return at
        assert frame.openings().get(spec).wait(120)  # it showed the opening under way: show its outcome
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()

    return open_app


@pytest.fixture(scope="session")
def other_tiny_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model, another seed: the same shape and tokenizer, other weights (so other scores)."""
    tokenizer = os.environ.get("RERANKER_TEST_TOKENIZER")
    dest = tmp_path_factory.mktemp("models") / "other-tiny-qwen3-reranker"
    return build_random_model(dest, tokenizer_dir=Path(tokenizer) if tokenizer else None, seed=1, init_std=0.5,
                              **TINY_SHAPE)


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray for every test that scores on Ray (the batch command, evaluate --ray)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 2**20)
    yield ray
    ray.shutdown()
