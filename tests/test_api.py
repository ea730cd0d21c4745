"""The sidecar over real HTTP: a uvicorn server in a child process with the tiny model, talked to with requests."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from reranker import Query
from reranker.sidecar.settings import Settings, SettingsError
from reranker.testing.sidecar_process import SidecarProcess

KEY = "test-key-0123456789"
ALLOWED_ORIGIN = "http://workbench.example"
LIMITS = {"RERANKER_MAX_DOCUMENTS": "20", "RERANKER_MAX_DOCUMENT_CHARS": "2000",
          "RERANKER_MAX_BODY_BYTES": "100000", "RERANKER_MAX_REQUEST_PAIRS": "30"}
DOCUMENTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies towards each other.",
             "中国的首都是北京。", "def f(x): return x * 2", "The quick brown fox jumps over the lazy dog."]


@pytest.fixture(scope="module")
def sidecar(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("sidecar-data")
    server = SidecarProcess(env={"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(data),
                                 "RERANKER_API_KEY": KEY, "RERANKER_CORS_ORIGINS": ALLOWED_ORIGIN, **LIMITS},
                            log_path=data / "server.log").start()
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api(sidecar: SidecarProcess) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEY}"
    return session


def test_health_reports_the_loaded_model(sidecar: SidecarProcess, tiny_model_dir: Path) -> None:
    response = requests.get(f"{sidecar.url}/health", timeout=10)  # no key needed here
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["model"] == str(tiny_model_dir)
    assert body["device"] == "cpu" and body["dtype"] == "float32"


def test_v1_rerank_returns_engine_scores_best_first(sidecar: SidecarProcess, api: requests.Session, reranker) -> None:
    query = "What is the capital of China?"
    sent = [DOCUMENTS[0], {"text": DOCUMENTS[1]}, DOCUMENTS[2], {"text": DOCUMENTS[3]}, DOCUMENTS[4]]
    response = api.post(f"{sidecar.url}/v1/rerank", json={"query": query, "documents": sent, "model": "anything"},
                        timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = reranker.judge(query, DOCUMENTS)
    assert sorted(r["index"] for r in body["results"]) == list(range(len(DOCUMENTS)))
    for result in body["results"]:
        assert result["relevance_score"] == pytest.approx(expected[result["index"]].score, abs=1e-5)
        assert result["document"] == {"text": DOCUMENTS[result["index"]]}
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert body["usage"]["total_tokens"] == sum(j.tokens for j in expected)
    assert body["model"] == reranker.model_name


def test_v1_rerank_top_n_and_without_documents(sidecar: SidecarProcess, api: requests.Session, reranker) -> None:
    query = "重力是什么？"
    response = api.post(f"{sidecar.url}/v1/rerank", timeout=60,
                        json={"query": query, "documents": DOCUMENTS, "top_n": 2, "return_documents": False,
                              "instruction": "Find the passage that defines the term"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    best = reranker.rank(query, DOCUMENTS, instruction="Find the passage that defines the term", top_k=2)
    assert [r["index"] for r in results] == [b.index for b in best]
    assert all("document" not in r for r in results)


def test_v1_rerank_with_no_documents_returns_an_empty_list(sidecar: SidecarProcess, api: requests.Session) -> None:
    response = api.post(f"{sidecar.url}/v1/rerank", json={"query": "q", "documents": []}, timeout=30)
    assert response.status_code == 200
    assert response.json()["results"] == [] and response.json()["usage"]["total_tokens"] == 0


def test_batch_rerank_ranks_each_query(sidecar: SidecarProcess, api: requests.Session, reranker) -> None:
    queries = ["What is the capital of China?", "什么是重力？"]
    documents = [DOCUMENTS[:3], [{"text": d} for d in DOCUMENTS[2:]]]
    response = api.post(f"{sidecar.url}/api/rerank", json={"queries": queries, "documents": documents},
                        timeout=60)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 2
    for query, docs, ranked in zip(queries, [DOCUMENTS[:3], DOCUMENTS[2:]], results):
        expected = reranker.rank(query, docs)
        assert [r["index"] for r in ranked] == [e.index for e in expected]
        assert [r["rank"] for r in ranked] == list(range(1, len(docs) + 1))
        for got, want in zip(ranked, expected):
            assert got["document"] == want.document
            assert got["score"] == pytest.approx(want.score, abs=1e-5)
            assert got["logit"] == pytest.approx(want.logit, abs=1e-4)


def test_concurrent_clients_each_get_their_own_scores(sidecar: SidecarProcess, api: requests.Session,
                                                      reranker) -> None:
    """Requests sent at once are merged into shared forward passes; each must still get its own verdicts."""
    clients = [(f"query number {n}: {DOCUMENTS[n % 5][:12]}",
                [DOCUMENTS[(n + k) % 5] + f" #{n}" for k in range(1 + n % 4)]) for n in range(12)]
    expected = reranker.judge_many([Query(q, d) for q, d in clients])
    before = _metric(api, sidecar, "reranker_pairs_scored_total", source="api")
    answers: dict[int, requests.Response] = {}
    start = threading.Barrier(len(clients))

    def client(n: int) -> None:
        start.wait()
        query, docs = clients[n]
        answers[n] = api.post(f"{sidecar.url}/v1/rerank", json={"query": query, "documents": docs}, timeout=120)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(len(clients)):
        assert answers[n].status_code == 200, answers[n].text
        got = {r["index"]: r["relevance_score"] for r in answers[n].json()["results"]}
        assert got == pytest.approx({i: j.score for i, j in enumerate(expected[n])}, abs=1e-5)
    after = _metric(api, sidecar, "reranker_pairs_scored_total", source="api")
    assert after - before == sum(len(d) for _, d in clients)


@pytest.mark.parametrize(("path", "body", "status", "names"), [
    ("/v1/rerank", '{"query": "q", "documents": ["a"', 400, "not valid JSON"),
    ("/v1/rerank", "", 422, "no body"),
    ("/v1/rerank", {"documents": ["a"]}, 422, "query"),
    ("/v1/rerank", {"query": "q"}, 422, "documents"),
    ("/v1/rerank", {"query": 7, "documents": ["a"]}, 422, "query"),
    ("/v1/rerank", {"query": "q", "documents": "just one string"}, 422, "documents"),
    ("/v1/rerank", {"query": "q", "documents": ["a", 3]}, 422, "documents[1]"),
    ("/v1/rerank", {"query": "q", "documents": [{"title": "no text"}]}, 422, "documents[0]"),
    ("/v1/rerank", {"query": "q", "documents": ["a"], "top_n": -1}, 422, "top_n"),  # 0 means all (vLLM)
    ("/v1/rerank", {"query": "q", "documents": ["a"], "top_n": "many"}, 422, "top_n"),
    ("/v1/rerank", ["not", "an", "object"], 422, "body"),
    ("/api/rerank", {"queries": ["a", "b"], "documents": [["x"]]}, 422, "queries and documents differ in length"),
    ("/api/rerank", {"queries": "a", "documents": [["x"]]}, 422, "queries"),
    ("/api/rerank", {"queries": ["a"], "documents": ["x"]}, 422, "documents[0]"),
    ("/api/rerank", {"queries": ["a"], "documents": [["x"]], "instruction": 5}, 422, "instruction"),
])
def test_bad_input_gets_a_clear_error(sidecar: SidecarProcess, api: requests.Session, path: str, body: object,
                                      status: int, names: str) -> None:
    data = body if isinstance(body, str) else json.dumps(body)
    response = api.post(f"{sidecar.url}{path}", data=data.encode(), headers={"Content-Type": "application/json"},
                        timeout=30)
    assert response.status_code == status, response.text
    answer = response.json()
    assert names in (answer.get("message") or answer["detail"])


@pytest.mark.parametrize(("path", "body", "names"), [
    ("/v1/rerank", {"query": "q", "documents": ["d"] * 21}, "RERANKER_MAX_DOCUMENTS"),
    ("/api/rerank", {"queries": ["q"], "documents": [["d"] * 21]}, "RERANKER_MAX_DOCUMENTS"),
    ("/api/rerank", {"queries": ["q", "r"], "documents": [["d"] * 16, ["e"] * 16]}, "RERANKER_MAX_REQUEST_PAIRS"),
    ("/v1/rerank", {"query": "q", "documents": ["short", "x" * 2001]}, "documents[1] has 2,001 characters"),
    ("/v1/rerank", {"query": "q" * 2001, "documents": ["d"]}, "RERANKER_MAX_DOCUMENT_CHARS"),
    ("/v1/rerank", {"query": "q", "documents": ["d"], "instruction": "i" * 2001}, "instruction"),
    ("/v1/rerank", {"query": "q", "documents": ["y" * 1000] * 101}, "RERANKER_MAX_BODY_BYTES"),
])
def test_over_a_limit_is_413_naming_the_limit(sidecar: SidecarProcess, api: requests.Session, path: str,
                                              body: object, names: str) -> None:
    response = api.post(f"{sidecar.url}{path}", json=body, timeout=30)
    assert response.status_code == 413, response.text
    assert names in response.json()["detail"]


def test_chunked_body_over_the_limit_is_413(sidecar: SidecarProcess, api: requests.Session) -> None:
    def chunks():
        yield b'{"query": "q", "documents": ['
        for _ in range(200):
            yield json.dumps("z" * 1000).encode() + b","
        yield b'"end"]}'

    response = api.post(f"{sidecar.url}/v1/rerank", data=chunks(), headers={"Content-Type": "application/json"},
                        timeout=30)
    assert response.status_code == 413
    assert "RERANKER_MAX_BODY_BYTES" in response.json()["detail"]


def test_bad_input_leaves_the_service_healthy(sidecar: SidecarProcess, api: requests.Session) -> None:
    for raw in (b"\xff\xfe\x00garbage", b"null", b"[]" * 1000, b'{"query": "' + b"\\u" + b'"}'):
        assert api.post(f"{sidecar.url}/v1/rerank", data=raw, headers={"Content-Type": "application/json"},
                        timeout=30).status_code in (400, 422)
    response = api.post(f"{sidecar.url}/v1/rerank", json={"query": "q", "documents": ["still fine"]}, timeout=30)
    assert response.status_code == 200


def test_api_key_is_required_except_for_health(sidecar: SidecarProcess) -> None:
    body = {"query": "q", "documents": ["d"]}
    assert requests.post(f"{sidecar.url}/v1/rerank", json=body, timeout=30).status_code == 401
    wrong = requests.post(f"{sidecar.url}/v1/rerank", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {KEY}x"})
    assert wrong.status_code == 401 and "wrong API key" in wrong.json()["detail"]
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    basic = requests.post(f"{sidecar.url}/v1/rerank", json=body, timeout=30, headers={"Authorization": f"Basic {KEY}"})
    assert basic.status_code == 401
    for path in ("/metrics", "/api/jobs", "/api/jobs/x/results"):
        assert requests.get(f"{sidecar.url}{path}", timeout=30).status_code == 401, path
    for path in ("/v2/rerank", "/rerank", "/score", "/v1/score", "/api/rerank"):
        assert requests.post(f"{sidecar.url}{path}", json=body, timeout=30).status_code == 401, path
    assert requests.get(f"{sidecar.url}/health", timeout=30).status_code == 200
    good = requests.post(f"{sidecar.url}/v1/rerank", json=body, timeout=30, headers={"Authorization": f"Bearer {KEY}"})
    assert good.status_code == 200


def test_cors_allows_only_the_listed_origins(sidecar: SidecarProcess, api: requests.Session) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    allowed = requests.options(f"{sidecar.url}/v1/rerank", headers={"Origin": ALLOWED_ORIGIN, **preflight}, timeout=30)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    other = api.post(f"{sidecar.url}/v1/rerank", json={"query": "q", "documents": ["d"]}, timeout=30,
                     headers={"Origin": "http://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    foreign = requests.options(f"{sidecar.url}/v1/rerank", headers={"Origin": "http://elsewhere.example", **preflight},
                               timeout=30)
    assert foreign.headers.get("Access-Control-Allow-Origin") in (None, "")


def test_metrics_in_prometheus_format(sidecar: SidecarProcess, api: requests.Session) -> None:
    api.post(f"{sidecar.url}/v1/rerank", json={"query": "q", "documents": ["a", "b"]}, timeout=30)
    families = {f.name: f for f in text_string_to_metric_families(api.get(f"{sidecar.url}/metrics", timeout=30).text)}
    for name in ("reranker_http_requests", "reranker_http_request_seconds", "reranker_pairs_scored",
                 "reranker_prompt_tokens", "reranker_queue_depth", "reranker_engine_call_pairs", "reranker_jobs"):
        assert name in families, name
    answered = [s for s in families["reranker_http_requests"].samples
                if s.labels.get("route") == "/v1/rerank" and s.labels.get("status") == "200"]
    assert answered and answered[0].value >= 1
    assert any(s.name.endswith("_bucket") for s in families["reranker_http_request_seconds"].samples)
    assert _metric(api, sidecar, "reranker_prompt_tokens_total", source="api") > 0


def test_openapi_docs_open_in_a_browser_with_an_authorize_button(sidecar: SidecarProcess) -> None:
    page = requests.get(f"{sidecar.url}/docs", timeout=30)  # a browser sends no key for the page itself
    assert page.status_code == 200 and "cdn." not in page.text  # works offline: the scripts are served here
    assert requests.get(f"{sidecar.url}/static-offline-docs/swagger-ui-bundle.js", timeout=30).status_code == 200
    spec = requests.get(f"{sidecar.url}/openapi.json", timeout=30).json()
    for path in ("/v1/rerank", "/v2/rerank", "/rerank", "/score", "/v1/score", "/api/rerank", "/api/jobs",
                 "/api/jobs/{job_id}", "/api/jobs/{job_id}/results", "/health", "/metrics"):
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "RERANKER_API_KEY"}
    assert spec["paths"]["/v1/rerank"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]
    answers = spec["paths"]["/v1/rerank"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(answers)
    assert {"404", "409"} <= set(spec["paths"]["/api/jobs/{job_id}/results"]["get"]["responses"])


def test_a_model_that_cannot_load_answers_503(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with SidecarProcess(env={"RERANKER_MODEL": str(missing), "RERANKER_DATA_DIR": str(tmp_path / "data"),
                             "RERANKER_API_KEY": ""}, log_path=tmp_path / "server.log") as server:
        health = server.wait_for_status("failed")  # it answers 503 while it tries, too
        assert str(missing) in health["error"]
        response = requests.post(f"{server.url}/v1/rerank", json={"query": "q", "documents": ["d"]}, timeout=30)
        assert response.status_code == 503 and "failed to load" in response.json()["detail"]
        job = requests.post(f"{server.url}/api/jobs", json={"queries": ["q"], "documents": [["d"]]}, timeout=30)
        assert job.status_code == 202  # kept, and run once a model loads


def test_settings_defaults_and_bad_values() -> None:
    defaults = Settings.from_env({})
    assert (defaults.max_documents, defaults.max_document_chars, defaults.max_body_bytes) == (1000, 100_000, 10 << 20)
    assert defaults.api_key is None and defaults.cors_origins == ()
    with pytest.raises(SettingsError, match="RERANKER_MAX_DOCUMENTS"):
        Settings.from_env({"RERANKER_MAX_DOCUMENTS": "lots"})
    with pytest.raises(SettingsError, match="RERANKER_CORS_ORIGINS"):
        Settings.from_env({"RERANKER_CORS_ORIGINS": "*"})


def _metric(api: requests.Session, sidecar: SidecarProcess, name: str, **labels: str) -> float:
    text = api.get(f"{sidecar.url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_a_request_whose_client_disconnects_stops_being_scored(open_sidecar: SidecarProcess) -> None:
    """On the one-port server (./start.sh's): the client gives up after half a second; the server scores no more of
    its request at the next forward pass, and counts it as 499."""
    session = requests.Session()
    scored = lambda: _metric(session, open_sidecar, "reranker_pairs_scored_total", source="api")  # noqa: E731
    before = scored()
    words = "Beijing is the capital of China and a large city in the north of the country. " * 8
    body = {"queries": [f"question {q}" for q in range(10)],
            "documents": [[f"{n} {words}" for n in range(1000)]] * 10}
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(f"{open_sidecar.url}/api/rerank", json=body, timeout=(5, 0.5))
    time.sleep(3)
    settled = scored()
    time.sleep(2)
    assert scored() == settled < before + 10_000  # it stopped before all 10,000 pairs
    gone = [s for f in text_string_to_metric_families(session.get(f"{open_sidecar.url}/metrics", timeout=30).text)
            for s in f.samples if s.labels.get("route") == "/api/rerank" and s.labels.get("status") == "499"]
    assert gone and gone[0].value >= 1
    assert session.post(f"{open_sidecar.url}/v1/rerank", json={"query": "q", "documents": ["a"]},
                        timeout=30).status_code == 200  # and goes on serving
