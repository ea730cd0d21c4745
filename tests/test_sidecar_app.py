"""create_app with an engine_factory, in-process through FastAPI's TestClient (the real-server tests stay in
test_api.py and test_jobs.py): the same engine answers, and a factory that fails is reported, not raised."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import LOGIT_TOLERANCE, SCORE_TOLERANCE
from fastapi.testclient import TestClient

from reranker import ModelLoadError, Qwen3Reranker
from reranker.sidecar.application import create_app
from reranker.sidecar.settings import Settings

QUERY = "What is the capital of China?"
DOCUMENTS = ["The capital of China is Beijing.", "Gravity is a force.", "北京是中国的首都。"]


def wait_until(client: TestClient, path: str, done, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(path).json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


@pytest.fixture
def client(reranker: Qwen3Reranker, tmp_path: Path):
    app = create_app(Settings(data_dir=tmp_path, api_key="k"), backend_factory=lambda: reranker)
    with TestClient(app, headers={"Authorization": "Bearer k"}) as client:
        assert wait_until(client, "/health", lambda b: b["status"] != "loading")["status"] == "ok"
        yield client


def test_the_factorys_engine_answers_every_endpoint(client: TestClient, reranker: Qwen3Reranker) -> None:
    health = client.get("/health").json()
    assert health["model"] == reranker.model_name and health["device"] == "cpu"
    expected = reranker.rank(QUERY, DOCUMENTS)

    answer = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCUMENTS})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["index"] for r in results] == [d.index for d in expected]
    assert [r["relevance_score"] for r in results] == pytest.approx([d.score for d in expected], abs=SCORE_TOLERANCE)

    many = client.post("/api/rerank", json={"queries": [QUERY], "documents": [DOCUMENTS], "top_n": 2}).json()
    assert [r["document"] for r in many["results"][0]] == [d.document for d in expected[:2]]
    want = [d.logit for d in expected[:2]]
    assert [r["logit"] for r in many["results"][0]] == pytest.approx(want, abs=LOGIT_TOLERANCE)

    created = client.post("/api/jobs", json={"queries": [QUERY], "documents": [DOCUMENTS]})
    assert created.status_code == 202 and created.headers["Location"] == f"/api/jobs/{created.json()['id']}"
    job = wait_until(client, created.headers["Location"], lambda b: b["status"] not in ("queued", "running"))
    assert job["status"] == "done", job
    ranked = client.get(f"{created.headers['Location']}/results").json()["queries"][0]["results"]
    assert [r["score"] for r in ranked] == pytest.approx([d.score for d in expected], abs=SCORE_TOLERANCE)


def test_service_errors_map_to_their_status_codes(client: TestClient) -> None:
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.post("/api/jobs/nope/retry").status_code == 404
    unsupported = client.post("/api/jobs", content=b"q,d", headers={"Content-Type": "text/csv"})
    assert unsupported.status_code == 415 and "multipart/form-data" in unsupported.json()["detail"]
    no_file = client.post("/api/jobs", files={"other": ("x.csv", b"q,d\n")})
    assert no_file.status_code == 422 and no_file.json()["message"].startswith("file: upload the table")
    unreadable = client.post("/api/jobs", files={"file": ("x.csv", b"")})
    assert unreadable.status_code == 400 and "empty" in unreadable.json()["detail"]
    no_key = client.get("/api/jobs", headers={"Authorization": ""})
    assert no_key.status_code == 401


def test_a_factory_that_fails_is_reported_by_health_and_503s(tmp_path: Path) -> None:
    def broken() -> Qwen3Reranker:
        raise ModelLoadError("Could not load the reranker model 'x'. Fix: point RERANKER_MODEL at a folder.")

    with TestClient(create_app(Settings(data_dir=tmp_path), backend_factory=broken)) as client:
        health = wait_until(client, "/health", lambda b: b["status"] != "loading")
        assert health["status"] == "failed" and health["error"].startswith("Could not load the reranker model 'x'")
        assert client.get("/health").status_code == 503
        answer = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCUMENTS})
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert "failed to load" in answer.json()["detail"] and "RERANKER_MODEL" in answer.json()["detail"]
