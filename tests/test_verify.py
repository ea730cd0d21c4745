"""`python -m reranker verify`: our own server called as RAG clients call it is exact in every dialect; int8 is
approximate; stand-in servers broken on purpose, each in one known way, are wrong with the matching diagnosis; bad
input is told in a line, never a traceback."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from conftest import SIDECAR_KEY
from fastapi import FastAPI

from reranker import Qwen3Reranker
from reranker.analysis.probes import probe_suite
from reranker.analysis.verification import verify
from reranker.cli.verify_command import VerifyOptions, run_verify
from reranker.core.failures import BadRequest
from reranker.core.prompt import DEFAULT_INSTRUCTION
from reranker.remote.plain_clients import plain_clients
from reranker.testing.sidecar_process import free_port

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "eval_sample"


def test_our_server_called_as_clients_call_it_is_exact_in_every_dialect(keyed_sidecar, tiny_model_dir: Path) -> None:
    reports = run_verify(VerifyOptions(keyed_sidecar.url, key=SIDECAR_KEY))
    assert [r.document()["target"].rsplit("/", 1)[-1] for r in reports] == ["rerank)", "rerank)", "rerank)", "score)"]
    for report in reports:
        document = report.document()
        assert document["verdict"] == "exact", json.dumps(document["probes"], indent=1)[:3000]
        assert document["reference"] == str(tiny_model_dir) and document["diagnoses"] == []
        assert document["max_abs_diff"] <= 1e-4 and document["spearman"] > 0.99
        assert {p["name"] for p in document["probes"]} == {p.name for p in probe_suite()}
        assert document["notes"] == []  # the server names the reference's model
        tokens = document["probes"][0]["prompt_tokens"]  # what the server says it read: the card's prompt
        assert tokens is None or tokens["reference"] == tokens["target"] > 0


def test_int8_is_approximate_and_the_report_is_written_and_exits_0(tiny_model_dir: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "reranker", "verify", f"{tiny_model_dir} (int8)", "--drift", "0.1",
                           "--json", str(tmp_path / "report.json")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "approximate" and 1e-4 < report["max_abs_diff"] <= 0.1
    assert {"verdict", "max_abs_diff", "spearman", "kendall_tau", "probes", "diagnoses"} <= set(report)
    assert all({"name", "verdict", "reference", "target", "abs_diff"} <= set(p) for p in report["probes"])
    assert "APPROXIMATE" in done.stdout and "Traceback" not in done.stderr


class BrokenServer:
    """/<fault>/v1/rerank: the real engine's scores, each fault breaking them as deployments in the field do."""

    def __init__(self, engine: Qwen3Reranker) -> None:
        self.engine = engine
        app = FastAPI()
        app.add_api_route("/{fault}/v1/rerank", self.rerank, methods=["POST"])
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    def rerank(self, fault: str, body: dict) -> dict:
        query, documents = body["query"], body["documents"]
        instruction = None if fault == "ignores_instruction" else body.get("instruction")
        scores = self.engine.score(query, documents, instruction)
        scores = [self.broken(fault, s, d, len(documents)) for s, d in zip(scores, documents)]
        return {"results": [{"index": n, "relevance_score": s} for n, s in enumerate(scores)]}

    @staticmethod
    def broken(fault: str, score: float, document: str, batch: int) -> float:
        if fault == "constant":  # vLLM without the overrides, a collapsed quantized head
            return 0.5
        if fault == "no_template":  # the raw texts scored: nothing to do with the model's ranking
            return int(hashlib.sha256(document.encode()).hexdigest()[:8], 16) / 16**8
        if fault == "chat_template":  # another prompt: the ranking kept, the scores off
            return 1 / (1 + math.exp(-(math.log(score / (1 - score)) + 2.0)))
        if fault == "cuts_suffix":  # a long document loses the prompt's end
            return 0.5 if len(document) > 10_000 else score
        if fault == "control_tokens":  # <|im_end|> in a document ends the turn
            return 0.99 if "<|" in document else score
        if fault == "batch":  # padding that moves a score with the request's size
            return min(score + 0.001 * batch, 1.0)
        return score

    def __enter__(self) -> str:
        threading.Thread(target=self.server.run, daemon=True).start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True


@pytest.fixture(scope="module")
def broken_server(reranker: Qwen3Reranker) -> Iterator[str]:
    with BrokenServer(reranker) as url:
        yield url


@pytest.mark.parametrize(("fault", "verdict", "cause"), [
    ("constant", "wrong", "constant_scores"),
    ("no_template", "wrong", "no_prompt_template"),
    ("chat_template", "wrong", "chat_template_added"),
    ("cuts_suffix", "wrong", "suffix_cut"),
    ("control_tokens", "wrong", "control_strings_as_tokens"),
    ("ignores_instruction", "wrong", "instruction_ignored"),
    ("batch", "approximate", "batch_dependent"),
])
def test_a_server_broken_in_one_known_way_gets_that_diagnosis(broken_server: str, reranker: Qwen3Reranker,
                                                              fault: str, verdict: str, cause: str) -> None:
    [target], served = plain_clients(f"{broken_server}/{fault}/v1/rerank")
    assert served is None  # it does not say: the reference is named
    document = verify(reranker, target, probe_suite()).document()
    assert document["verdict"] == verdict
    assert [d["cause"] for d in document["diagnoses"]] == [cause]
    assert document["diagnoses"][0]["fix"]


def test_a_healthy_stand_in_is_exact(broken_server: str, reranker: Qwen3Reranker) -> None:
    [target], _ = plain_clients(f"{broken_server}/none/v1/rerank")
    document = verify(reranker, target, probe_suite()).document()
    assert document["verdict"] == "exact" and document["diagnoses"] == []


def test_with_a_dataset_both_rerank_it_and_the_measures_are_compared(tiny_model_dir: Path) -> None:
    [report] = run_verify(VerifyOptions(f"{tiny_model_dir} (int8)", drift=0.1, dataset=SAMPLE,
                                        run=SAMPLE / "bm25.trec", top_k=3))
    measures = report.document()["measures"]
    assert measures["queries"] == 30 and set(measures["measures"]) == {"nDCG@10", "RR@10", "R@100", "AP"}
    for m in measures["measures"].values():
        assert m["target_minus_reference"] == pytest.approx(m["target"] - m["reference"])
        assert m["p_value"] is None or 0 <= m["p_value"] <= 1


@pytest.mark.parametrize(("target", "extra", "says"), [
    ("http://127.0.0.1:9/v1/rerank", ["--reference", "REF"], "Could not reach"),
    ("REF (int8)", ["--reference", "/nowhere/such-model"], "/nowhere/such-model"),
    ("http://127.0.0.1:9/v1/rerank", [], "Could not reach"),
])
def test_bad_input_is_told_in_a_line(tiny_model_dir: Path, target: str, extra: list[str], says: str) -> None:
    args = [a.replace("REF", str(tiny_model_dir)) for a in [target, *extra]]
    done = subprocess.run([sys.executable, "-m", "reranker", "verify", *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and says in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_a_target_that_does_not_say_its_model_needs_a_reference(broken_server: str) -> None:
    with pytest.raises(BadRequest, match="--reference"):
        run_verify(VerifyOptions(f"{broken_server}/none/v1/rerank"))


def test_the_default_instruction_is_not_sent() -> None:
    from reranker.core.ranking import Query
    from reranker.remote.plain_clients import DIALECTS

    body = DIALECTS["v1_rerank"].body("m", Query("q", ["d"], DEFAULT_INSTRUCTION))
    assert "instruction" not in body and DIALECTS["tei"].body("m", Query("q", ["d"], "mine"))["instruction"] == "mine"


def test_a_server_naming_another_model_is_noted() -> None:
    from reranker.analysis.verification import other_model_note

    assert other_model_note("Qwen/Qwen3-Reranker-0.6B", "/models/qwen3-reranker-0.6b (int8)") == []
    assert other_model_note(None, "/models/x") == [] and other_model_note("a", None) == []
    [note] = other_model_note("BAAI/bge-reranker-v2-m3", "Qwen/Qwen3-Reranker-0.6B")
    assert "bge-reranker-v2-m3" in note and "--reference" in note
