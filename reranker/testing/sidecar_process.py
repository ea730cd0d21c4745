"""Start a Qwen-Ranker server as a child process on a free loopback port (tests and bench/ use this)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SidecarProcess:
    """`python -m reranker serve` (the API alone) or, with command="workbench", the pages and the API on one port (as
    ./start.sh runs it), in its own process group, its output in `log_path`."""

    def __init__(self, env: dict[str, str] | None = None, port: int | None = None, log_path: Path | None = None,
                 host: str = "127.0.0.1", command: str = "serve") -> None:
        self.command = command
        self.host = host
        self.port = port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SidecarProcess:
        command = [sys.executable, "-m", "reranker", self.command, "--host", self.host, "--port", str(self.port)]
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        return self

    def wait_healthy(self, timeout: float = 120.0, want: int = 200) -> dict[str, object]:
        """Poll /health until it answers `want`; raises with the server's log if it dies, says its model failed to
        load (unless that is what is wanted), or takes too long."""
        def done(response: requests.Response) -> bool:
            if response.status_code != want and _status(response) == "failed":
                raise RuntimeError(f"the sidecar's model failed to load: {response.text}")
            return response.status_code == want

        return self._wait(done, f"answer {want}", timeout)

    def wait_for_status(self, status: str, timeout: float = 120.0) -> dict[str, object]:
        """Poll /health until its `status` is `status` ("ok", "loading", "failed"); raises as wait_healthy does."""
        return self._wait(lambda response: _status(response) == status, f"say {status!r}", timeout)

    def _wait(self, done: Callable[[requests.Response], bool], what: str, timeout: float) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the sidecar exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                response = requests.get(f"{self.url}/health", timeout=5)
                last = (response.status_code, response.text)
                if done(response):
                    return response.json()
            except requests.ConnectionError as e:
                last = e
            time.sleep(0.1)
        raise TimeoutError(f"/health did not {what} within {timeout:.0f} s (last: {last}):\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_path is None or not Path(self.log_path).exists():
            return "(no log)"
        return Path(self.log_path).read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """kill -9 the whole process group: no shutdown code runs, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it lingers; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            except ProcessLookupError:
                pass
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
            self._log = None
        return self.process.returncode

    def __enter__(self) -> SidecarProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _status(response: requests.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("status") if isinstance(body, dict) else None
