"""Jobs over real HTTP: JSON and CSV jobs through to results, cancelling, and surviving kill -9."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from pathlib import Path

import pytest
import requests
from conftest import SCORE_TOLERANCE

from reranker import DEFAULT_INSTRUCTION
from reranker.formats.exports import EXPORT_COLUMNS
from reranker.testing.sidecar_process import SidecarProcess

CHUNK = 3


@pytest.fixture
def jobs_server(open_sidecar: SidecarProcess) -> SidecarProcess:
    return open_sidecar


def wait_for(url: str, statuses: tuple[str, ...] = ("done", "failed", "cancelled"), timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(url, timeout=30).json()
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job still {job['status']} after {timeout} s: {job}")


def test_json_job_runs_to_results(jobs_server: SidecarProcess, reranker) -> None:
    queries = ["What is the capital of China?", "什么是重力？"]
    documents = [["Beijing is the capital.", "=HYPERLINK(\"x\")", "Paris"],
                 ["重力是一种力。", "北京", "-5 apples", "@x"]]
    created = requests.post(f"{jobs_server.url}/api/jobs", json={"queries": queries, "documents": documents,
                                                                 "top_n": 3}, timeout=30)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert created.json()["status"] in ("queued", "running")
    assert created.headers["Location"] == f"/api/jobs/{job_id}"
    job = wait_for(f"{jobs_server.url}/api/jobs/{job_id}")
    assert job["status"] == "done" and job["progress"] == {"done": 7, "total": 7, "fraction": 1.0}
    assert job["finished_at"] >= job["started_at"] >= job["created_at"]

    results = requests.get(f"{jobs_server.url}/api/jobs/{job_id}/results", timeout=30).json()
    assert [q["query"] for q in results["queries"]] == queries
    assert [q["instruction"] for q in results["queries"]] == [DEFAULT_INSTRUCTION] * 2  # the one used
    for q, docs, got in zip(queries, documents, results["queries"]):
        want = reranker.rank(q, docs, top_k=3)
        assert [r["index"] for r in got["results"]] == [w.index for w in want]
        assert [r["score"] for r in got["results"]] == pytest.approx([w.score for w in want], abs=1e-5)

    exported = requests.get(f"{jobs_server.url}/api/jobs/{job_id}/results", params={"format": "csv"}, timeout=30)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 6  # top 3 of each query
    cells = {r["document"] for r in rows}
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)  # formulas neutralised
    assert "'=HYPERLINK(\"x\")" in cells or "'-5 apples" in cells or "'@x" in cells


def test_csv_job_with_column_mapping(jobs_server: SidecarProcess, reranker) -> None:
    table = ("问题,passage_text,gold,note\n"
             "what is gravity,Gravity is a force.,1,a\n"
             "what is gravity,=1+1,0,b\n"
             "北京在哪里,北京是中国的首都。,2,c\n"
             "what is gravity,Paris is in France.,0,d\n")
    created = requests.post(f"{jobs_server.url}/api/jobs", timeout=30,
                            files={"file": ("pairs.csv", table.encode("gb18030"), "text/csv")},
                            data={"query_column": "问题", "document_column": "passage_text", "label_column": "gold"})
    assert created.status_code == 202, created.text
    job = wait_for(f"{jobs_server.url}/api/jobs/{created.json()['id']}")
    assert job["status"] == "done" and job["kind"] == "csv" and job["progress"]["total"] == 4
    assert job["columns"] == {"query": "问题", "document": "passage_text", "label": "gold", "instruction": None}

    exported = requests.get(f"{jobs_server.url}/api/jobs/{job['id']}/results?format=csv", timeout=30)
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    # the export schema, then the upload's other columns; the uploaded table's order
    assert list(rows[0]) == [*EXPORT_COLUMNS, "note"]
    assert [r["note"] for r in rows] == ["a", "b", "c", "d"] and [r["index"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[1]["document"] == "'=1+1" and rows[2]["query"] == "北京在哪里"
    assert [r["label"] for r in rows] == ["1", "0", "2", "0"]
    gravity = reranker.judge("what is gravity", ["Gravity is a force.", "=1+1", "Paris is in France."])
    beijing = reranker.judge("北京在哪里", ["北京是中国的首都。"])
    expected = [gravity[0], gravity[1], beijing[0], gravity[2]]
    assert [float(r["score"]) for r in rows] == pytest.approx([j.score for j in expected], abs=1e-5)
    assert rows[2]["rank"] == "1"

    results = requests.get(f"{jobs_server.url}/api/jobs/{job['id']}/results", timeout=30).json()
    first = results["queries"][0]
    assert first["query"] == "what is gravity"
    assert {(r["row"], r["label"]) for r in first["results"]} == {(0, 1.0), (1, 0.0), (3, 0.0)}


def test_csv_job_scores_rows_without_an_instruction_with_the_one_sent(jobs_server: SidecarProcess, reranker) -> None:
    own = "Given a code search query, retrieve code"
    sent = "Given a customer's support question, retrieve help articles that resolve it"
    table = ("query,document,instruction\n"
             f'reset password,Click Forgot password.,\nreset password,def reset(): ...,"{own}"\n')
    created = requests.post(f"{jobs_server.url}/api/jobs", timeout=30, data={"instruction": sent},
                            files={"file": ("pairs.csv", table.encode(), "text/csv")})
    assert created.status_code == 202, created.text
    job = wait_for(f"{jobs_server.url}/api/jobs/{created.json()['id']}")
    exported = requests.get(f"{jobs_server.url}/api/jobs/{job['id']}/results?format=csv", timeout=30)
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["instruction"] for r in rows] == [sent, own]
    want = [reranker.judge("reset password", ["Click Forgot password."], sent)[0],
            reranker.judge("reset password", ["def reset(): ..."], own)[0]]
    assert [float(r["score"]) for r in rows] == pytest.approx([j.score for j in want], abs=SCORE_TOLERANCE)


@pytest.mark.parametrize(("files", "data", "status", "says"), [
    ({"file": ("empty.csv", b"", "text/csv")}, {}, 400, "empty"),
    ({"file": ("book.xlsx", b"PK\x03\x04\x00\x00binary", "application/octet-stream")}, {}, 400, "binary"),
    ({"file": ("t.csv", b"query,document\nq,d\n", "text/csv")}, {"query_column": "missing"}, 400, "'missing'"),
    ({"file": ("t.csv", b"a,b\nq,d\n", "text/csv")}, {}, 422, "query_column"),
    ({"file": ("t.csv", b"query,document,label\nq,d,high\n", "text/csv")}, {}, 400, "row 1"),
    ({"upload": ("t.csv", b"query,document\nq,d\n", "text/csv")}, {}, 422, "'file'"),
    ({"file": ("t.csv", b"query,document\nq,d\nq\nq,d3\n", "text/csv")}, {}, 400, "line 3 has 1 field "),
    ({"file": ("t.csv", b"query,document\nq,d,x\nq,d2,y\n", "text/csv")}, {}, 400, "line 2 has 3 fields"),
    ({"file": ("t.tsv", b"query\tdocument\nq\td\textra\n", "text/tab-separated-values")}, {}, 400,
     "line 2 has 3 fields"),
])
def test_bad_uploads_are_refused_with_a_reason(jobs_server: SidecarProcess, files: dict, data: dict, status: int,
                                               says: str) -> None:
    before = len(requests.get(f"{jobs_server.url}/api/jobs", timeout=30).json())
    response = requests.post(f"{jobs_server.url}/api/jobs", files=files, data=data, timeout=30)
    assert response.status_code == status, response.text
    answer = response.json()
    assert says in (answer.get("message") or answer["detail"])
    assert len(requests.get(f"{jobs_server.url}/api/jobs", timeout=30).json()) == before


def test_bad_json_jobs_are_refused(jobs_server: SidecarProcess) -> None:
    url = f"{jobs_server.url}/api/jobs"
    broken = requests.post(url, data=b"{oops", headers={"Content-Type": "application/json"}, timeout=30)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["detail"]
    mismatch = requests.post(url, json={"queries": ["a", "b"], "documents": [["x"]]}, timeout=30)
    assert mismatch.status_code == 422 and "differ in length" in mismatch.json()["message"]
    wrong_type = requests.post(url, data=b"queries=a", headers={"Content-Type": "text/plain"}, timeout=30)
    assert wrong_type.status_code == 415


@pytest.mark.parametrize(("kind", "body", "names"), [
    ("json", {"queries": ["q"], "documents": [["d"] * 501]}, "RERANKER_MAX_JOB_PAIRS"),
    ("json", {"queries": ["q"], "documents": [["d", "x" * 5001]]}, "documents[0][1]"),
    ("json", {"queries": ["q"], "documents": [["y" * 4000] * 80]}, "RERANKER_MAX_JOB_BYTES"),
    ("csv", "query,document\n" + "q,d\n" * 501, "RERANKER_MAX_JOB_PAIRS"),
    ("csv", "query,document\nq,d\nq," + "x" * 5001 + "\n", "row 2"),
    ("csv", "query,document\n" + ("q," + "z" * 4000 + "\n") * 80, "RERANKER_MAX_JOB_BYTES"),
])
def test_jobs_over_a_limit_are_413(jobs_server: SidecarProcess, kind: str, body: object, names: str) -> None:
    url = f"{jobs_server.url}/api/jobs"
    if kind == "json":
        response = requests.post(url, json=body, timeout=30)
    else:
        response = requests.post(url, files={"file": ("big.csv", body.encode(), "text/csv")}, timeout=30)
    assert response.status_code == 413, response.text
    assert names in response.json()["detail"]


def test_cancel_a_running_job(jobs_server: SidecarProcess) -> None:
    documents = [[f"document {n} of query {q}" for n in range(30)] for q in range(2)]
    created = requests.post(f"{jobs_server.url}/api/jobs", json={"queries": ["first", "second"],
                                                                 "documents": documents}, timeout=30)
    url = f"{jobs_server.url}/api/jobs/{created.json()['id']}"
    wait_for(url, ("running",))
    cancelled = requests.delete(url, timeout=30)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    time.sleep(0.5)
    job = requests.get(url, timeout=30).json()
    assert job["status"] == "cancelled" and job["progress"]["done"] < job["progress"]["total"]
    partial = requests.get(f"{url}/results", timeout=30).json()  # what it had scored, marked cancelled
    assert partial["status"] == "cancelled"
    assert sum(len(q["results"]) for q in partial["queries"]) == job["progress"]["done"]
    partial_csv = requests.get(f"{url}/results?format=csv", timeout=30)
    assert partial_csv.status_code == 200 and partial_csv.text.count("\n") == job["progress"]["done"] + 1
    assert requests.delete(url, timeout=30).status_code == 200  # cancelling twice is harmless

    db = sqlite3.connect(Path(jobs_server.env["RERANKER_DATA_DIR"]) / "jobs.sqlite3")
    query = "SELECT pnum, scored_at FROM job_pairs WHERE job_id = ? AND scored_at IS NOT NULL"
    scored_before = dict(db.execute(query, (created.json()["id"],)).fetchall())
    retried = requests.post(f"{url}/retry", timeout=30)
    assert retried.status_code == 200 and retried.json()["status"] in ("queued", "running")
    job = wait_for(url)
    assert job["status"] == "done" and job["progress"]["done"] == job["progress"]["total"] == 60 and not job["error"]
    scored_after = dict(db.execute(query, (created.json()["id"],)).fetchall())
    db.close()
    assert len(scored_after) == 60
    assert {n: scored_after[n] for n in scored_before} == scored_before  # what was scored is kept, not redone
    assert requests.get(f"{url}/results", timeout=30).status_code == 200
    again = requests.post(f"{url}/retry", timeout=30)
    assert again.status_code == 409 and "only a failed or cancelled job" in again.json()["detail"]


def test_rerank_is_answered_while_a_job_runs(jobs_server: SidecarProcess) -> None:
    documents = [[f"job document {n}" for n in range(60)]]
    created = requests.post(f"{jobs_server.url}/api/jobs", json={"queries": ["busy"], "documents": documents},
                            timeout=30)
    url = f"{jobs_server.url}/api/jobs/{created.json()['id']}"
    wait_for(url, ("running",))
    answer = requests.post(f"{jobs_server.url}/v1/rerank", json={"query": "q", "documents": ["a", "b"]}, timeout=60)
    assert answer.status_code == 200
    assert requests.get(url, timeout=30).json()["status"] == "running"  # the job did not have to finish first
    requests.delete(url, timeout=30)


def test_unknown_and_finished_jobs(jobs_server: SidecarProcess) -> None:
    assert requests.get(f"{jobs_server.url}/api/jobs/nope", timeout=30).status_code == 404
    assert requests.get(f"{jobs_server.url}/api/jobs/nope/results", timeout=30).status_code == 404
    assert requests.delete(f"{jobs_server.url}/api/jobs/nope", timeout=30).status_code == 404
    created = requests.post(f"{jobs_server.url}/api/jobs", json={"queries": ["q"], "documents": [["d"]]}, timeout=30)
    url = f"{jobs_server.url}/api/jobs/{created.json()['id']}"
    wait_for(url)
    refused = requests.delete(url, timeout=30)
    assert refused.status_code == 409 and "already finished" in refused.json()["detail"]


def test_job_survives_kill_9_and_resumes_without_rescoring(tiny_model_dir: Path, tmp_path: Path, reranker) -> None:
    chunk = 4
    env = {"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(tmp_path), "RERANKER_API_KEY": "",
           "RERANKER_JOB_CHUNK_PAIRS": str(chunk), "RERANKER_JOB_CHUNK_DELAY": "0.1"}
    queries = [f"query {q}: which passage talks about topic {q}?" for q in range(3)]
    documents = [[f"passage {n} about topic {(n * 7) % 5}" for n in range(40)] for _ in queries]
    server = SidecarProcess(env=env, log_path=tmp_path / "first.log", command="workbench").start()  # as ./start.sh
    try:
        server.wait_healthy()
        big = requests.post(f"{server.url}/api/jobs", json={"queries": queries, "documents": documents}, timeout=30)
        small = requests.post(f"{server.url}/api/jobs", json={"queries": ["waiting"], "documents": [["a", "b"]]},
                              timeout=30)
        big_id, small_id = big.json()["id"], small.json()["id"]
        deadline = time.monotonic() + 60
        while requests.get(f"{server.url}/api/jobs/{big_id}", timeout=30).json()["progress"]["done"] < 3 * chunk:
            assert time.monotonic() < deadline, "the job never got going"
            time.sleep(0.05)
        server.kill()
    finally:
        server.stop()

    db = sqlite3.connect(tmp_path / "jobs.sqlite3")
    status, done, total = db.execute("SELECT status, done_pairs, total_pairs FROM jobs WHERE id = ?",
                                     (big_id,)).fetchone()
    assert status == "running" and 0 < done < total == 120
    scored_before = dict(db.execute("SELECT pnum, scored_at FROM job_pairs WHERE job_id = ? AND scored_at IS NOT NULL",
                                    (big_id,)).fetchall())
    assert len(scored_before) == done
    assert db.execute("SELECT status FROM jobs WHERE id = ?", (small_id,)).fetchone()[0] == "queued"
    db.close()

    env.update({"RERANKER_JOB_CHUNK_DELAY": "0", "RERANKER_JOB_CHUNK_PAIRS": "32"})
    with SidecarProcess(env=env, log_path=tmp_path / "second.log") as restarted:
        restarted.wait_healthy()
        job = wait_for(f"{restarted.url}/api/jobs/{big_id}")
        assert job["status"] == "done" and job["progress"]["done"] == 120
        assert wait_for(f"{restarted.url}/api/jobs/{small_id}")["status"] == "done"
        results = requests.get(f"{restarted.url}/api/jobs/{big_id}/results", timeout=30).json()

    for query, docs, got in zip(queries, documents, results["queries"]):
        want = reranker.judge(query, docs)
        assert {r["index"]: r["score"] for r in got["results"]} == pytest.approx(
            {i: j.score for i, j in enumerate(want)}, abs=1e-5)

    db = sqlite3.connect(tmp_path / "jobs.sqlite3")
    after = {pnum: (scored_at, attempts) for pnum, scored_at, attempts in db.execute(
        "SELECT pnum, scored_at, attempts FROM job_pairs WHERE job_id = ?", (big_id,))}
    db.close()
    for pnum, scored_at in scored_before.items():
        assert after[pnum] == (scored_at, 1), f"pair {pnum} was scored again after the restart"
    rescored = [pnum for pnum, (_, attempts) in after.items() if attempts > 1]
    assert len(rescored) <= chunk  # at most the one chunk that was in the engine when the process died
    assert all(attempts <= 2 for _, attempts in after.values())


def test_a_second_server_on_the_same_data_folder_refuses_to_start_at_once(jobs_server: SidecarProcess,
                                                                    tmp_path: Path) -> None:
    data = jobs_server.env["RERANKER_DATA_DIR"]
    second = SidecarProcess(env={"RERANKER_DATA_DIR": data}, log_path=tmp_path / "second.log",
                            command="workbench").start()  # a second ./start.sh
    started = time.monotonic()
    try:
        assert second.process.wait(60) == 2
        assert time.monotonic() - started < 10  # told before the heavy imports
    finally:
        second.stop()
    log = second.log_tail()
    assert f"another Qwen-Ranker server (pid {jobs_server.process.pid})" in log and data in log
    assert "RERANKER_DATA_DIR" in log
    assert "Traceback" not in log
    assert requests.get(f"{jobs_server.url}/health", timeout=10).status_code == 200  # the first one is untouched


def test_a_data_folder_that_cannot_be_created_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    env = {"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(tmp_path / "a-file" / "data")}
    server = SidecarProcess(env=env, log_path=tmp_path / "server.log").start()
    try:
        assert server.process.wait(60) == 2
    finally:
        server.stop()
    log = server.log_tail()
    assert "a-file/data cannot be used" in log and "RERANKER_DATA_DIR" in log and "Traceback" not in log
