"""./start.sh runs the workbench and the sidecar side by side, and Ctrl-C or SIGTERM stops both, leaving nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
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


@pytest.mark.parametrize("stop", ["SIGTERM", "Ctrl-C", "sidecar crash"])
def test_start_sh_runs_app_and_sidecar_and_stops_both(tiny_model_dir: Path, tmp_path: Path, stop: str) -> None:
    ui_port, api_port = free_port(), free_port()
    env = {**os.environ, "RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(tmp_path / "data"),
           "RERANKER_UI_PORT": str(ui_port), "RERANKER_API_PORT": str(api_port), "RERANKER_API_KEY": "",
           "STREAMLIT_SERVER_HEADLESS": "true", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = open(tmp_path / "start.log", "wb")  # noqa: SIM115
    script = subprocess.Popen(["./start.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 240  # the first run may still install requirements
        while not (answers(f"http://127.0.0.1:{api_port}/health")
                   and answers(f"http://127.0.0.1:{ui_port}/_stcore/health")):
            assert script.poll() is None, (tmp_path / "start.log").read_text(errors="replace")
            assert time.monotonic() < deadline, (tmp_path / "start.log").read_text(errors="replace")
            time.sleep(0.3)
        assert len(session_processes(script.pid)) >= 3  # the script, the sidecar and streamlit

        if stop == "Ctrl-C":
            os.killpg(script.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the foreground group
        elif stop == "SIGTERM":
            script.send_signal(signal.SIGTERM)
        else:  # one of the two dies: the script stops the other and exits
            sidecar = next(p for p in session_processes(script.pid) if "reranker serve" in p)
            os.kill(int(sidecar.split()[0]), signal.SIGKILL)
        script.wait(60)
        assert script.returncode != 0
        left = session_processes(script.pid)
        assert left == [], left
        assert not answers(f"http://127.0.0.1:{api_port}/health")
        assert not answers(f"http://127.0.0.1:{ui_port}/_stcore/health")
    finally:
        for pid in session_processes(script.pid):
            os.kill(int(pid.split()[0]), signal.SIGKILL)
        if script.poll() is None:
            script.kill()
            script.wait(10)
        log.close()
