"""A real third-party server for tests and benchmarks, in a virtualenv of its own (made once, then reused): the
parts every such server shares. vllm_process.py and infinity_process.py say what each one is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests


class ServerUnavailable(RuntimeError):
    """The server cannot be installed or run on this machine; the message says why."""


def package_python(venv: Path, steps: list[list[str]], marker: str,
                   report=lambda line: print(line, file=sys.stderr)) -> Path:
    """The python of `venv`, made on first use by `steps` (each a command; "{python}" stands for the venv's python),
    then marked ready with `marker` so later calls reuse it."""
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    if ready.exists() and ready.read_text() == marker and python.exists():
        return python
    report(f"making the virtualenv {venv} ({marker}), once")
    for step in [[sys.executable, "-m", "venv", str(venv)], *steps]:
        step = [str(python) if part == "{python}" else part for part in step]
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise ServerUnavailable(f"{marker} cannot be set up here: `{' '.join(step[-3:])}` failed: "
                                    + " / ".join(said))
    ready.write_text(marker)
    return python


class ServerProcess:
    """A server on a loopback port, its output in `log_path`; subclasses give `command()` and `ready_path`."""

    name = "the server"
    ready_path = "/health"
    """A GET that answers 200 once the server can score."""

    def __init__(self, log_path: Path, port: int) -> None:
        self.log_path = log_path
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        """(the command line, the environment variables it needs beyond os.environ)."""
        raise NotImplementedError

    def start(self) -> ServerProcess:
        command, extra_env = self.command()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra_env}
        env.pop("PYTHONPATH", None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=self.log_path.parent, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Until `ready_path` answers 200; ServerUnavailable with the log's end if it exits or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerUnavailable(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}{self.ready_path}", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(1)
        raise ServerUnavailable(f"{self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
