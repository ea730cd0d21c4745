"""open_backend and the remote backends, against real servers: a live sidecar, and a vLLM stand-in answering as
vLLM 0.32 does, which starts at once and can be told to fail (tests/test_real_vllm.py runs a real vLLM)."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
import requests
from conftest import LOGIT_TOLERANCE, SCORE_TOLERANCE
from vllm_stand_in import VllmStandIn

from reranker import Query, Qwen3Reranker, RerankBackend, RerankerError, UnsupportedOption, open_backend
from reranker.remote import RerankApiBackend, SidecarBackend, VllmScoreBackend
from reranker.remote.remote_backend import logit_of
from reranker.sidecar.settings import SettingsError, refuse_own_address
from reranker.testing.sidecar_process import ROOT, SidecarProcess, free_port

QUERIES = [
    Query("What is the capital of China?", ["The capital of China is Beijing.", "Gravity pulls things down.",
                                            "北京是中国的首都。", "def capital(): return 'Beijing'"]),
    Query("如何提高睡眠质量？", ["保持规律的作息时间。", "红烧肉的做法。", "睡前少看手机。"],
          instruction="Given a question, retrieve passages that answer it"),
]
PAIRS = sum(len(q.documents) for q in QUERIES)


@pytest.fixture(scope="module")
def vllm(tiny_model_dir: Path):
    with VllmStandIn(str(tiny_model_dir)) as server:
        yield server


def dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_folder_opens_the_engine_in_this_process(tiny_model_dir: Path) -> None:
    backend = open_backend(str(tiny_model_dir), device="cpu")
    assert isinstance(backend, Qwen3Reranker) and isinstance(backend, RerankBackend)
    assert backend.describe()["where"] == "in this process"


def test_a_sidecar_backend_gives_the_engines_judgements_exactly(open_sidecar, reranker: Qwen3Reranker) -> None:
    backend = open_backend(open_sidecar.url)
    assert isinstance(backend, SidecarBackend) and backend.model_name == reranker.model_name
    assert backend.describe()["where"] == f"server {open_sidecar.url}"
    backend.pairs_per_request = 2  # several requests, so progress moves
    seen: list[tuple[int, int]] = []
    remote = backend.judge_many(QUERIES, lambda done, total: seen.append((done, total)))
    local = reranker.judge_many(QUERIES)
    for got, want in zip(remote, local, strict=True):
        for g, w in zip(got, want, strict=True):
            # a different split into forward passes moves float32 sums in their last bits
            assert g.score == pytest.approx(w.score, abs=SCORE_TOLERANCE)
            assert g.logit == pytest.approx(w.logit, abs=LOGIT_TOLERANCE)
            assert (g.tokens, g.truncated) == (w.tokens, w.truncated)
    assert len(seen) >= 4 and seen[-1] == (PAIRS, PAIRS)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_sidecar_backend_honours_truncation_options(open_sidecar, reranker: Qwen3Reranker) -> None:
    query = Query("capital", ["Beijing is the capital of China and its seat of government."], document_tokens=3,
                  keep_document_end=True)
    [[remote]] = open_backend(open_sidecar.url).judge_many([query])
    [[local]] = reranker.judge_many([query])
    assert remote.truncated is True and remote.tokens == local.tokens
    assert remote.score == pytest.approx(local.score, abs=SCORE_TOLERANCE)


def test_a_vllm_backend_sends_the_official_prompt_halves(vllm: VllmStandIn, reranker: Qwen3Reranker) -> None:
    backend = open_backend(vllm.url)
    assert isinstance(backend, VllmScoreBackend) and backend.model_name == vllm.served_name
    remote = backend.judge_many(QUERIES)
    local = reranker.judge_many(QUERIES)
    for got, want in zip(remote, local, strict=True):
        for g, w in zip(got, want, strict=True):
            assert g.score == pytest.approx(w.score, abs=1e-5)
            assert g.logit == pytest.approx(w.logit, abs=1e-3)
            assert g.tokens is None and g.truncated is False  # its max_model_len is known: nothing was cut
    # pieces go two at a time, so which request ends last is a race: find the one with the Chinese query
    sent = next(r for r in reversed(vllm.requests) if "睡眠" in r["text_1"][0])
    assert sent["text_1"][0].endswith("<Query>: 如何提高睡眠质量？\n") and "retrieve passages" in sent["text_1"][0]
    assert sent["text_2"][0].startswith("<Document>: 保持规律的作息时间。<|im_end|>")


def test_a_vllm_backend_refuses_what_vllm_cannot_do(vllm: VllmStandIn) -> None:
    with pytest.raises(UnsupportedOption, match="token cap"):
        open_backend(vllm.url).judge_many([Query("q", ["d"], document_tokens=5)])


def test_a_too_big_request_is_split_until_it_passes(vllm: VllmStandIn, reranker: Qwen3Reranker) -> None:
    backend = open_backend(f"{vllm.url}/score")
    vllm.max_pairs = 2
    try:
        remote = backend.judge_many(QUERIES)
    finally:
        vllm.max_pairs = None
    assert [len(r) for r in remote] == [len(q.documents) for q in QUERIES]
    assert remote[0][2].score == pytest.approx(reranker.judge_many(QUERIES)[0][2].score, abs=1e-5)


def test_a_busy_server_is_asked_again_after_its_retry_after(vllm: VllmStandIn) -> None:
    backend = open_backend(vllm.url)
    vllm.faults.extend([(503, {"Retry-After": "0"}), (503, {"Retry-After": "0"})])
    assert len(backend.judge_many([QUERIES[0]])[0]) == 4
    vllm.faults.extend([(503, {"Retry-After": "0"})] * 4)
    with pytest.raises(RerankerError, match="busy or not ready.*3 retries"):
        backend.judge_many([Query("q", ["d"])])
    vllm.faults.clear()


@pytest.mark.parametrize(("fault", "words"), [
    ((500, {}), "failed (HTTP 500: injected). Fix: see that server's log"),
    ((404, {}), "answered /score with HTTP 404: injected"),  # the server's own words (a model it does not serve)
])
def test_a_failing_server_is_named_with_the_fix(vllm: VllmStandIn, fault, words: str) -> None:
    backend = open_backend(vllm.url)
    vllm.faults.append(fault)
    with pytest.raises(RerankerError) as caught:
        backend.judge_many([Query("q", ["d"])])
    assert words in str(caught.value) and vllm.url in str(caught.value)


def test_an_address_the_server_has_no_route_for_says_check_the_address(open_sidecar) -> None:
    with pytest.raises(RerankerError) as caught:
        open_backend(f"{open_sidecar.url}/nowhere/v1/rerank").judge_many([Query("q", ["d"])])
    assert re.search(r"does not exist \(HTTP 40[45]", str(caught.value)) and "check the address" in str(caught.value)


def test_a_malformed_answer_is_named(vllm: VllmStandIn) -> None:
    vllm.malformed = True
    try:
        with pytest.raises(RerankerError, match="cannot read"):
            open_backend(vllm.url).judge_many([Query("q", ["d"])])
    finally:
        vllm.malformed = False


def test_a_wrong_key_is_told_when_the_backend_opens(keyed_sidecar, tiny_model_dir: Path) -> None:
    with pytest.raises(RerankerError, match="refused the key.*RERANKER_SERVER_KEY"):
        open_backend(keyed_sidecar.url, key="not-the-key")
    with VllmStandIn(str(tiny_model_dir), key="secret") as server:
        with pytest.raises(RerankerError, match="refused the key"):
            open_backend(server.url)
        assert open_backend(server.url, key="secret").judge_many([Query("q", ["d"])])[0][0].tokens is None


def test_an_unreachable_server_is_named_within_seconds() -> None:
    address = dead_address()
    started = time.monotonic()
    with pytest.raises(RerankerError, match=f"Could not reach the reranking server at {address}"):
        open_backend(address)
    assert time.monotonic() - started < 10


def test_a_rerank_api_url_gives_scores_only(open_sidecar, reranker: Qwen3Reranker) -> None:
    backend = open_backend(f"{open_sidecar.url}/v1/rerank")
    assert isinstance(backend, RerankApiBackend)
    [remote] = backend.judge_many(QUERIES[:1])
    [local] = reranker.judge_many(QUERIES[:1])
    for g, w in zip(remote, local, strict=True):
        assert g.score == pytest.approx(w.score, abs=SCORE_TOLERANCE) and g.logit == pytest.approx(logit_of(w.score))
        assert g.tokens is None
    with pytest.raises(UnsupportedOption, match="takes no instruction"):
        backend.judge_many(QUERIES[1:])


def test_logit_of_a_saturated_score_is_clipped() -> None:
    assert logit_of(1.0) == pytest.approx(27.63, abs=0.01) and logit_of(0.0) == pytest.approx(-27.63, abs=0.01)
    assert logit_of(0.5) == 0.0


@pytest.fixture(scope="module")
def gateway(open_sidecar, tmp_path_factory: pytest.TempPathFactory):
    """A sidecar with no model of its own, in front of the open sidecar."""
    data = tmp_path_factory.mktemp("gateway")
    env = {"RERANKER_SERVER": open_sidecar.url, "RERANKER_DATA_DIR": str(data), "RERANKER_API_KEY": "",
           "RERANKER_MODEL": "/no/model/here"}
    with SidecarProcess(env=env, log_path=data / "server.log") as server:
        server.wait_healthy()
        yield server


def test_a_gateway_sidecar_answers_with_the_servers_arithmetic(gateway, reranker: Qwen3Reranker) -> None:
    health = requests.get(f"{gateway.url}/health", timeout=10).json()
    assert health["where"].startswith("server http://") and health["model"] == reranker.model_name
    body = {"query": QUERIES[0].query, "documents": list(QUERIES[0].documents)}
    answer = requests.post(f"{gateway.url}/v1/rerank", json=body, timeout=60).json()
    want = reranker.judge_many(QUERIES[:1])[0]
    assert {r["index"]: r["relevance_score"] for r in answer["results"]} == pytest.approx(
        {i: j.score for i, j in enumerate(want)}, abs=SCORE_TOLERANCE)
    assert answer["usage"]["total_tokens"] == sum(j.tokens for j in want)


def test_a_gateway_in_front_of_vllm_leaves_token_counts_out_and_refuses_caps(
        vllm: VllmStandIn, tmp_path: Path) -> None:
    env = {"RERANKER_SERVER": vllm.url, "RERANKER_DATA_DIR": str(tmp_path), "RERANKER_API_KEY": "",
           "RERANKER_MODEL": "/no/model/here"}
    with SidecarProcess(env=env, log_path=tmp_path / "server.log") as server:
        server.wait_healthy()
        answer = requests.post(f"{server.url}/v1/rerank", json={"query": "q", "documents": ["a", "b"]}, timeout=60)
        assert answer.status_code == 200 and "usage" not in answer.json() and len(answer.json()["results"]) == 2
        capped = requests.post(f"{server.url}/v2/rerank", timeout=60,
                               json={"query": "q", "documents": ["a"], "max_tokens_per_doc": 4})
        assert capped.status_code == 400 and "cannot honour a per-document token cap" in capped.json()["message"]
        vllm.faults.append((500, {}))
        failed = requests.post(f"{server.url}/v1/rerank", json={"query": "q", "documents": ["a"]}, timeout=60)
        assert failed.status_code == 502 and vllm.url in failed.json()["message"]
        job = requests.post(f"{server.url}/api/jobs", json={"queries": ["q"], "documents": [["a", "b"]]}, timeout=60)
        deadline = time.monotonic() + 60
        while requests.get(f"{server.url}/api/jobs/{job.json()['id']}", timeout=10).json()["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.3)
        [ranked] = requests.get(f"{server.url}/api/jobs/{job.json()['id']}/results", timeout=10).json()["queries"]
        assert len(ranked["results"]) == 2  # a server that does not count tokens: they are left out
        assert "tokens" not in {k for r in ranked["results"] for k in r}


def test_a_sidecar_that_failed_to_load_is_named_not_mistaken(tmp_path: Path) -> None:
    env = {"RERANKER_MODEL": str(tmp_path / "no-such-model"), "RERANKER_DATA_DIR": str(tmp_path),
           "RERANKER_API_KEY": ""}
    with SidecarProcess(env=env, log_path=tmp_path / "server.log") as server:
        server.wait_for_status("failed")
        with pytest.raises(RerankerError, match="Qwen-Ranker sidecar at .* could not load its model.*no-such-model"):
            open_backend(server.url)


def test_a_sidecar_refuses_itself_as_its_backend(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(SettingsError, match="own address"):
        refuse_own_address(f"http://localhost:{port}/", "127.0.0.1", port)
    refuse_own_address(f"http://localhost:{port + 1}", "127.0.0.1", port)
    import subprocess
    import sys

    env = {"RERANKER_SERVER": f"http://127.0.0.1:{port}", "RERANKER_DATA_DIR": str(tmp_path), "PATH": ""}
    done = subprocess.run([sys.executable, "-m", "reranker", "serve", "--port", str(port)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot be its own backend" in done.stderr
