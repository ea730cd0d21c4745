"""A sidecar serving a second model (RERANKER_EXTRA_MODELS), chosen by a request's `model` field, and the Compare
page comparing the two through it."""

import time

import pytest
import requests
from conftest import LOGIT_TOLERANCE, SCORE_TOLERANCE
from streamlit.testing.v1 import AppTest

from reranker import Qwen3Reranker
from reranker.testing.sidecar_process import ROOT, SidecarProcess

QUERY = "What is the capital of China?"
DOCUMENTS = ["Beijing is the capital.", "Paris is in France.", "北京是中国的首都。"]


@pytest.fixture(scope="module")
def two_model_sidecar(tiny_model_dir, other_tiny_model_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("two-model-sidecar")
    env = {"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(data), "RERANKER_API_KEY": "",
           "RERANKER_EXTRA_MODELS": f"{other_tiny_model_dir}, /no/such/model"}
    with SidecarProcess(env=env, log_path=data / "server.log") as server:
        server.wait_healthy()
        yield server


def extra_state(url: str, name: str) -> str:
    return requests.get(f"{url}/health", timeout=10).json()["extra_models"][name]["state"]


def wait_ready(url: str, name: str) -> None:
    deadline = time.monotonic() + 60
    while (state := extra_state(url, name)) != "ready":
        assert state == "loading" and time.monotonic() < deadline, state
        time.sleep(0.2)


def test_a_request_naming_the_extra_model_is_scored_by_it(two_model_sidecar, reranker, other_tiny_model_dir):
    url, other = two_model_sidecar.url, str(other_tiny_model_dir)
    health = requests.get(f"{url}/health", timeout=10).json()
    assert health["extra_models"][other]["state"] == "not loaded"
    assert "MB of weights" in health["extra_models"][other]["needs"]  # told before it loads
    first = requests.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": DOCUMENTS, "model": other},
                          timeout=30)
    assert first.status_code == 503 and "is loading" in first.text  # it loads on the first request naming it
    wait_ready(url, other)

    answer = requests.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": DOCUMENTS, "model": other},
                           timeout=30).json()
    assert answer["model"] == other
    want = Qwen3Reranker(model=other, device="cpu").score(QUERY, DOCUMENTS)
    got = {r["index"]: r["relevance_score"] for r in answer["results"]}
    assert [got[i] for i in range(3)] == pytest.approx(want, abs=SCORE_TOLERANCE)

    # any other name is answered by the sidecar's own model, as RAG clients that send their own names expect
    own = requests.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": DOCUMENTS,
                                                  "model": "rerank-english-v3.0"}, timeout=30).json()
    assert own["model"] == reranker.model_name
    got = {r["index"]: r["relevance_score"] for r in own["results"]}
    assert [got[i] for i in range(3)] == pytest.approx(reranker.score(QUERY, DOCUMENTS), abs=SCORE_TOLERANCE)


def test_loading_is_refused_for_unlisted_models_and_a_failure_is_told(two_model_sidecar):
    url = two_model_sidecar.url
    refused = requests.post(f"{url}/api/models/load", json={"model": "Qwen/Qwen3-Reranker-8B"}, timeout=10)
    assert refused.status_code == 400 and "is not one of this sidecar's extra models" in refused.text
    assert requests.post(f"{url}/api/models/load", json={"model": "/no/such/model"}, timeout=10).status_code == 202
    deadline = time.monotonic() + 30
    while extra_state(url, "/no/such/model") == "loading":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert extra_state(url, "/no/such/model") == "failed"
    failed = requests.post(f"{url}/v1/rerank", json={"query": "q", "documents": ["d"], "model": "/no/such/model"},
                           timeout=10)
    assert failed.status_code == 400 and "could not be loaded" in failed.text


def test_the_compare_page_compares_the_sidecars_two_models(two_model_sidecar, reranker, other_tiny_model_dir,
                                                            monkeypatch):
    url, other = two_model_sidecar.url, str(other_tiny_model_dir)
    for name in ("RERANKER_SERVER_KEY", "RERANKER_API_URL", "RERANKER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RERANKER_SERVER", url)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at = at.switch_page("views/compare.py").run()
    at.text_input(key="compare_query").input(QUERY)
    at.text_area(key="compare_documents").input("\n".join(DOCUMENTS))
    at = at.selectbox(key="compare_B_model").set_value(other).run()
    if extra_state(url, other) != "ready":
        at = at.button(key="compare_B_model_load").click().run()
        wait_ready(url, other)
        at = at.run()
    assert not at.button(key="compare").disabled
    at = at.button(key="compare").click().run()
    assert not at.exception and not at.error
    a, b = at.session_state["comparison"].runs
    assert (a.model, b.model) == (reranker.model_name, other)
    instruction_b = b.instruction
    want_b = Qwen3Reranker(model=other, device="cpu").judge(QUERY, DOCUMENTS, instruction_b)
    assert b.logits() == pytest.approx([j.logit for j in want_b], abs=LOGIT_TOLERANCE)
    want_a = reranker.judge(QUERY, DOCUMENTS, a.instruction)
    assert a.logits() == pytest.approx([j.logit for j in want_a], abs=LOGIT_TOLERANCE)
