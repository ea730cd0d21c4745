"""./start.sh serves the pages and the API on one port, in one process: the tutorial's calls work there verbatim,
Ctrl-C or SIGTERM stop it leaving nothing, and RERANKER_HOST opens it to other machines only with a key."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from reranker.testing.sidecar_process import ROOT, free_port


def session_processes(session: int) -> list[str]:
    """Live processes of a session (zombies do not count: they are gone, only not yet reaped)."""
    out = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    alive = []
    for line in out.splitlines():
        pid, sid, stat, *args = line.split(None, 3)
        if int(sid) == session and not stat.startswith("Z"):
            alive.append(f"{pid} {' '.join(args)}")
    return alive


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@contextmanager
def start_sh(tiny_model_dir: Path, tmp_path: Path, **env: str) -> Iterator[tuple[subprocess.Popen, int]]:
    """./start.sh on the tiny model and a free port, until it answers on it; killed, whatever is left, after."""
    port = free_port()
    full = {**os.environ, "RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(tmp_path / "data"),
            "RERANKER_PORT": str(port), "RERANKER_API_KEY": "", "STREAMLIT_SERVER_HEADLESS": "true", **env}
    log = open(tmp_path / "start.log", "wb")  # noqa: SIM115
    script = subprocess.Popen(["./start.sh"], cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 240  # the first run may still install requirements
        while not (answers(f"http://127.0.0.1:{port}/health") and answers(f"http://127.0.0.1:{port}/_stcore/health")):
            assert script.poll() is None, (tmp_path / "start.log").read_text(errors="replace")
            assert time.monotonic() < deadline, (tmp_path / "start.log").read_text(errors="replace")
            time.sleep(0.3)
        yield script, port
    finally:
        for pid in session_processes(script.pid):
            os.kill(int(pid.split()[0]), signal.SIGKILL)
        if script.poll() is None:
            script.kill()
            script.wait(10)
        log.close()


@pytest.mark.parametrize("stop", ["SIGTERM", "Ctrl-C"])
def test_start_sh_serves_pages_and_api_on_one_port_and_stops_leaving_nothing(tiny_model_dir: Path, tmp_path: Path,
                                                                               stop: str) -> None:
    with start_sh(tiny_model_dir, tmp_path, RERANKER_API_PORT="8502") as (script, port):
        assert len(session_processes(script.pid)) == 1  # one process: the pages, the API, the job worker
        said = (tmp_path / "start.log").read_text(errors="replace")
        assert "RERANKER_API_PORT is no longer used" in said and f"http://localhost:{port}" in said

        # the tutorial's call, verbatim but for the port
        url = f"http://localhost:{port}/api/rerank"
        data = {"queries": ["Query1", "Query2"],
                "documents": [["Doc1_A", "Doc1_B", "Doc1_C"], ["Doc2_A", "Doc2_B", "Doc2_C"]]}
        results = requests.post(url, json=data).json()
        assert [len(ranked) for ranked in results["results"]] == [3, 3]
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert requests.get(f"http://127.0.0.1:{port}/docs", timeout=10).status_code == 200

        if stop == "Ctrl-C":
            os.killpg(script.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the foreground group
        else:
            script.send_signal(signal.SIGTERM)
        script.wait(60)
        assert session_processes(script.pid) == []
        assert not answers(f"http://127.0.0.1:{port}/health")


def listening(port: int) -> set[str]:
    """The local addresses with a socket listening on `port` (from the kernel's table, `ss`)."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def test_open_to_other_machines_only_with_a_key(tiny_model_dir: Path, tmp_path: Path) -> None:
    refused = subprocess.run(["./start.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120, env={
        **os.environ, "RERANKER_HOST": "0.0.0.0", "RERANKER_API_KEY": "", "RERANKER_MODEL": str(tiny_model_dir),
        "RERANKER_DATA_DIR": str(tmp_path / "refused"), "RERANKER_PORT": str(free_port())})
    assert refused.returncode == 2 and "RERANKER_API_KEY is not set" in refused.stderr
    assert "RERANKER_ALLOW_OPEN" in refused.stderr and "Traceback" not in refused.stderr

    key = "a-long-random-secret"
    with start_sh(tiny_model_dir, tmp_path, RERANKER_HOST="0.0.0.0", RERANKER_API_KEY=key) as (_, port):
        assert listening(port) == {"0.0.0.0"}  # every interface (traffic here goes to loopback only)
        said = (tmp_path / "start.log").read_text(errors="replace")
        assert f"http://localhost:{port}" in said and said.count(f":{port}") >= 2  # and this machine's own address
        base = f"http://127.0.0.1:{port}"
        wrong = {"Authorization": "Bearer not-the-key"}
        for method, path in [("POST", "/api/rerank"), ("POST", "/v1/rerank"), ("POST", "/v2/rerank"),
                             ("POST", "/rerank"), ("POST", "/score"), ("POST", "/v1/score"), ("GET", "/api/jobs"),
                             ("POST", "/api/jobs"), ("GET", "/metrics"), ("POST", "/api/models/load")]:
            answer = requests.request(method, f"{base}{path}", headers=wrong, timeout=10, json={})
            assert answer.status_code == 401, (path, answer.text)
        right = requests.post(f"{base}/v1/rerank", timeout=30, headers={"Authorization": f"Bearer {key}"},
                              json={"query": "q", "documents": ["a", "b"]})
        assert right.status_code == 200 and len(right.json()["results"]) == 2
