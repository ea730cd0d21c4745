"""The approximate CPU mode (dtype int8): close to float32, named wherever its scores go, on every front end.

The tiny test model (2 layers, hidden 64) has sharper scores than the real one, so its int8 drift is larger: the
full-size figures (max |dp| about 0.02) are in docs/BENCHMARKS.md, measured by bench/int8.py."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import combinations

import pytest
import requests
import torch
from test_engine import DOCUMENTS, HOSTILE, QUERY

from reranker import Qwen3Reranker
from reranker.backends import open_backend
from reranker.core.model_names import INT8
from reranker.testing.sidecar_process import SidecarProcess

TINY_MODEL_DRIFT = 0.25
"""Largest |int8 score - float32 score| allowed on the tiny model."""
CLEAR_LOGIT_GAP = 2.0
"""Two documents whose float32 log-odds are this far apart (odds 7 to 1) are a clear case: int8 must order them the
same way."""


@pytest.fixture(scope="module")
def int8_engine(tiny_model_dir) -> Qwen3Reranker:
    return Qwen3Reranker(str(tiny_model_dir), device="cpu", dtype="int8")


def test_int8_scores_stay_close_to_float32_and_keep_clear_cases_in_order(reranker, int8_engine):
    documents = DOCUMENTS + HOSTILE
    exact, approximate = reranker.judge(QUERY, documents), int8_engine.judge(QUERY, documents)
    worst = max(abs(a.score - b.score) for a, b in zip(exact, approximate))
    assert worst <= TINY_MODEL_DRIFT, f"max |dp| {worst:.3f}"
    clear = [(i, j) for i, j in combinations(range(len(documents)), 2)
             if abs(exact[i].logit - exact[j].logit) > CLEAR_LOGIT_GAP]
    assert clear, "the documents give no clear case on this model"
    for i, j in clear:
        assert (exact[i].logit > exact[j].logit) == (approximate[i].logit > approximate[j].logit), (i, j)
    exact, approximate = [j.score for j in exact], [j.score for j in approximate]
    # the yes/no head stays float32: scores spread as float32's do, never collapsed to 0 or 0.5
    assert max(approximate) - min(approximate) > 0.5 * (max(exact) - min(exact))


def test_int8_is_named_and_chosen_never_by_auto(reranker, int8_engine, tiny_model_dir, monkeypatch):
    assert reranker.model_name == str(tiny_model_dir) and reranker.describe()["dtype"] == "float32"
    assert int8_engine.model_name == f"{tiny_model_dir} (int8)" and int8_engine.describe()["dtype"] == "int8"
    monkeypatch.setenv("RERANKER_DTYPE", "int8")
    assert open_backend(str(tiny_model_dir)).model_name == f"{tiny_model_dir} (int8)"  # the environment's choice
    assert open_backend(f"{tiny_model_dir} (int8)", dtype=None).describe()["dtype"] == "int8"  # the shown name
    monkeypatch.setenv("RERANKER_DTYPE", "auto")
    assert open_backend(str(tiny_model_dir)).describe()["dtype"] == "float32"


def test_int8_on_a_gpu_is_refused_clearly(tiny_model_dir):
    with pytest.raises(ValueError, match="int8 is the approximate mode for CPUs"):
        Qwen3Reranker(str(tiny_model_dir), device="meta", dtype="int8")


def test_the_rank_command_in_int8_names_it_in_its_output(tiny_model_dir, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCUMENTS[:3]), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "reranker", "rank", "--model", str(tiny_model_dir), "--dtype", "int8",
                           "--query", QUERY, "--docs", str(docs), "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ranked = json.loads(done.stdout)
    assert {row["model"] for row in ranked} == {f"{tiny_model_dir} (int8)"}


def test_a_server_started_in_int8_says_so_in_health_answers_and_jobs(tiny_model_dir, tmp_path):
    env = {"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(tmp_path), "RERANKER_DTYPE": "int8"}
    with SidecarProcess(env=env, log_path=tmp_path / "server.log") as server:
        server.wait_healthy()
        health = requests.get(f"{server.url}/health", timeout=30).json()
        assert (health["dtype"], health["model"]) == ("int8", f"{tiny_model_dir} (int8)")
        answer = requests.post(f"{server.url}/v1/rerank", json={"query": QUERY, "documents": DOCUMENTS[:3]},
                               timeout=60).json()
        assert answer["model"] == f"{tiny_model_dir} (int8)"
        direct = Qwen3Reranker(str(tiny_model_dir), device="cpu", dtype="int8").score(QUERY, DOCUMENTS[:3])
        by_index = {r["index"]: r["relevance_score"] for r in answer["results"]}
        assert max(abs(by_index[i] - s) for i, s in enumerate(direct)) < 1e-4


def test_an_int8_score_does_not_depend_on_the_documents_beside_it(tiny_model_dir, int8_engine):
    """Activations are quantized per token, so a pass's other rows never move a document's score."""
    alone = [int8_engine.score(QUERY, [d])[0] for d in DOCUMENTS]
    one_pass = Qwen3Reranker(str(tiny_model_dir), device="cpu", dtype="int8", batch_tokens=1 << 16)
    assert max(abs(a - b) for a, b in zip(alone, one_pass.score(QUERY, DOCUMENTS))) < 1e-5


def test_int8_read_straight_from_safetensors_scores_as_int8_quantized_after_a_float32_load(tiny_model_dir, int8_engine,
                                                                                            tmp_path):
    """The same weights saved without safetensors load whole in float32 and are quantized afterwards: the scores must
    be the very same numbers as those of the model read tensor by tensor into int8."""
    import shutil

    from safetensors.torch import load_file

    whole = tmp_path / "as-pytorch-bin"
    shutil.copytree(tiny_model_dir, whole, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(load_file(tiny_model_dir / "model.safetensors"), whole / "pytorch_model.bin")
    loaded_whole = Qwen3Reranker(str(whole), device="cpu", dtype="int8")
    documents = DOCUMENTS + HOSTILE
    assert [j.logit for j in loaded_whole.judge(QUERY, documents)] == \
        [j.logit for j in int8_engine.judge(QUERY, documents)]
    assert type(int8_engine.model.get_input_embeddings()).__name__ == "WidenedEmbedding"  # it was read the new way


def test_fast_is_bfloat16_where_the_cpu_multiplies_it_natively_and_int8_elsewhere():
    from reranker.engine.loading import fast_dtype

    assert fast_dtype({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}) == torch.bfloat16  # AMD EPYC (Zen 4)
    assert fast_dtype({"avx2", "avx512f", "amx_tile", "amx_bf16", "amx_int8"}) == torch.bfloat16  # Sapphire Rapids
    assert fast_dtype({"avx2", "avx512f", "avx512_vnni"}) == INT8  # Cascade Lake
    assert fast_dtype({"avx2", "fma"}) == INT8
    assert fast_dtype(set()) == INT8  # flags not known (no /proc/cpuinfo)


def test_fast_runs_named_by_the_dtype_it_picked_on_this_cpu(tiny_model_dir, monkeypatch):
    from reranker.engine.loading import cpu_flags, fast_dtype

    picked = "int8" if fast_dtype(cpu_flags()) == INT8 else "bfloat16"
    engine = Qwen3Reranker(str(tiny_model_dir), device="cpu", dtype="fast")
    assert (engine.model_name, engine.describe()["dtype"]) == (f"{tiny_model_dir} ({picked})", picked)
    assert 0 <= min(engine.score(QUERY, DOCUMENTS[:2])) <= max(engine.score(QUERY, DOCUMENTS[:2])) <= 1
    assert open_backend(f"{tiny_model_dir} (fast)", dtype=None).model_name == f"{tiny_model_dir} ({picked})"
    monkeypatch.setenv("RERANKER_DTYPE", "fast")
    assert open_backend(str(tiny_model_dir)).model_name == f"{tiny_model_dir} ({picked})"


def test_int8_products_by_onednn_s_quantized_linear_score_as_by_int_mm(tiny_model_dir, int8_engine, monkeypatch):
    """The same integer products, the scales applied in another order: the same scores to float32's rounding."""
    from reranker.engine import int8

    monkeypatch.setattr(int8, "ONEDNN_LINEAR", int8.has_onednn_linear())
    onednn = Qwen3Reranker(str(tiny_model_dir), device="cpu", dtype="int8")
    documents = DOCUMENTS + HOSTILE
    assert max(abs(a - b) for a, b in zip(onednn.score(QUERY, documents), int8_engine.score(QUERY, documents))) < 1e-4
