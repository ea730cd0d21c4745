"""A real Infinity server (`infinity-emb`, michaelfeil/infinity) for tests and benchmarks, in a virtualenv of its own
(`.venv-infinity` beside `.venv`, $RERANKER_INFINITY_VENV elsewhere), serving a sequence classifier (a Qwen3-Reranker
exported by `python -m reranker export`) on its /rerank.

Infinity 0.0.78 pins sentence-transformers 3 and numpy 1, and transformers below 5: the virtualenv gets the project's
torch first (so no CUDA build is pulled) and a transformers 4 of the range the engine supports.
"""

from __future__ import annotations

import sys
from pathlib import Path

from reranker.core.environment import INFINITY_VENV
from reranker.testing.server_process import ServerProcess, package_python
from reranker.testing.sidecar_process import ROOT, free_port

INFINITY_PACKAGES = ["infinity-emb[server,torch]==0.0.78", "transformers>=4.51,<5"]


def infinity_python(report=lambda line: print(line, file=sys.stderr)) -> Path:
    """The python of a virtualenv with Infinity, made on first use (about a minute)."""
    import torch

    venv = Path(INFINITY_VENV.read() or ROOT / ".venv-infinity")
    return package_python(venv, [
        ["{python}", "-m", "pip", "install", "-q", f"torch=={torch.__version__.split('+')[0]}"],
        ["{python}", "-m", "pip", "install", "-q", *INFINITY_PACKAGES],
        ["{python}", "-c", "import infinity_emb.infinity_server"]], " ".join(INFINITY_PACKAGES), report)


class InfinityProcess(ServerProcess):
    """`infinity_emb v2` serving `model_dir` in float32 on the CPU, at /rerank (no /v1 prefix, Infinity's default)."""

    name = "Infinity"
    ready_path = "/models"

    def __init__(self, model_dir: Path, log_path: Path) -> None:
        super().__init__(log_path, free_port())
        self.model_dir = model_dir

    def command(self) -> tuple[list[str], dict[str, str]]:
        python = infinity_python()
        command = [str(python.parent / "infinity_emb"), "v2", "--model-id", str(self.model_dir), "--device", "cpu",
                   "--dtype", "float32", "--engine", "torch", "--no-bettertransformer", "--host", "127.0.0.1",
                   "--port", str(self.port)]
        return command, {"INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1"}
