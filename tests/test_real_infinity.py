"""A Qwen3-Reranker exported as a sequence classifier (`python -m reranker export --to seq-cls`), served by a real
Infinity (`infinity-emb` 0.0.78, in a virtualenv of its own made on first use) and checked with `verify`. Infinity
scores with sentence-transformers 3, which strips each text of a pair: the query part's final line break is lost, so
even sent the prompt's halves as the export's README says (`--prompt-halves`) it does not read the card's prompt, and
verify says so (a template, but not the card's: the server reads one token a pair fewer); called as RAG clients call
a rerank API (query and documents as plain text) it is wrong for want of any template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reranker.testing.infinity_process import InfinityProcess
from reranker.testing.server_process import ServerUnavailable

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def export_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reranker.engine.seq_cls_export import export_seq_cls

    return export_seq_cls(str(tiny_model_dir), tmp_path_factory.mktemp("infinity") / "tiny-seq-cls")


@pytest.fixture(scope="module")
def infinity(export_dir: Path) -> Iterator[InfinityProcess]:
    try:
        with InfinityProcess(export_dir, export_dir.parent / "infinity.log") as server:
            server.wait_ready(300)
            yield server
    except ServerUnavailable as e:
        pytest.fail(f"Infinity could not be started: {e}")


def verify(*args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = Path(tempfile.mkdtemp()) / "report.json"
    done = subprocess.run([sys.executable, "-m", "reranker", "verify", *args, "--json", str(report)], cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert report.exists(), done.stderr[-2000:]
    return done, json.loads(report.read_text(encoding="utf-8"))


def test_sent_the_prompt_halves_infinity_strips_the_query_parts_line_break(infinity: InfinityProcess,
                                                                          tiny_model_dir: Path) -> None:
    done, report = verify(infinity.url, "--reference", str(tiny_model_dir), "--prompt-halves")
    assert report["target"].endswith(f"{infinity.url}/rerank)")  # a base address: Infinity's /rerank, found
    assert done.returncode == 1 and report["verdict"] == "wrong", done.stdout
    assert "chat_template_added" in [d["cause"] for d in report["diagnoses"]], done.stdout


def test_called_as_rag_clients_call_it_infinity_is_wrong_without_the_prompt(infinity: InfinityProcess,
                                                                          tiny_model_dir: Path) -> None:
    done, report = verify(infinity.url + "/rerank", "--reference", str(tiny_model_dir))
    assert done.returncode == 1 and report["verdict"] == "wrong"
    assert "no_prompt_template" in [d["cause"] for d in report["diagnoses"]]
    assert "WRONG" in done.stdout
