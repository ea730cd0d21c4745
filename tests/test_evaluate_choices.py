"""`evaluate` choosing: several models in one command (a Qwen3-Reranker and a bge-like cross-encoder), a dense or
hybrid first stage from a sentence-transformers embedding model (exact cosine search, embeddings kept on disk), and a
depth sweep; each figure equal to what a separate evaluation, or a computation by hand in the test, gives; bad input
named with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ir_measures
import numpy as np
import pytest

from reranker.analysis.first_stage import bm25_run
from reranker.cli.evaluate_command import EvaluateOptions
from reranker.cli.evaluate_command import evaluate as evaluate_here
from reranker.core.failures import TooLarge
from reranker.formats.retrieval import read_documents, read_qrels, read_queries, read_run
from reranker.testing.random_encoders import build_cross_encoder, build_embedding_model, vocabulary_of

sentence_transformers = pytest.importorskip("sentence_transformers")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "eval_sample"
QUERY_PROMPT = "query: "


def evaluate(tmp_path: Path, *args: str, store: str = "judgements.sqlite3") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reranker", "evaluate", str(SAMPLE), "--store",
                           str(tmp_path / store), *args], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.fixture(scope="module")
def sample_vocabulary() -> list[str]:
    return vocabulary_of([*read_documents(SAMPLE / "corpus.jsonl").values(),
                          *read_queries(SAMPLE / "queries.jsonl").values(), QUERY_PROMPT])


@pytest.fixture(scope="module")
def bge_dir(tmp_path_factory: pytest.TempPathFactory, sample_vocabulary: list[str]) -> Path:
    return build_cross_encoder(tmp_path_factory.mktemp("models") / "tiny-bge", sample_vocabulary)


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory: pytest.TempPathFactory, sample_vocabulary: list[str]) -> Path:
    return build_embedding_model(tmp_path_factory.mktemp("models") / "tiny-embedder", sample_vocabulary, QUERY_PROMPT)


def labelled_queries() -> dict[str, str]:
    qrels = read_qrels(SAMPLE / "qrels" / "test.tsv")
    return {q: t for q, t in read_queries(SAMPLE / "queries.jsonl").items() if q in qrels}


def brute_force_cosine(embedder_dir: Path) -> dict[str, dict[str, float]]:
    """Every labelled query's cosine with every document, computed here: the query with the model's prompt."""
    model = sentence_transformers.SentenceTransformer(str(embedder_dir), device="cpu")
    documents, queries = read_documents(SAMPLE / "corpus.jsonl"), labelled_queries()
    d = model.encode(list(documents.values()), convert_to_numpy=True).astype(np.float64)
    q = model.encode(list(queries.values()), prompt=QUERY_PROMPT, convert_to_numpy=True).astype(np.float64)
    cosine = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (d / np.linalg.norm(d, axis=1, keepdims=True)).T
    return {qid: dict(zip(documents, row.tolist())) for qid, row in zip(queries, cosine)}


def assert_same_ranking(got: list[tuple[str, float]], want: dict[str, float], depth: int) -> None:
    """`got` is `want`'s `depth` best, best first (equal up to a tie within the file's 6 decimals)."""
    best = sorted(want.values(), reverse=True)[:depth]
    assert len(got) == len(best)
    assert [s for _, s in got] == pytest.approx(best, abs=2e-6)
    assert [want[d] for d, _ in got] == pytest.approx([s for _, s in got], abs=2e-6)


def test_a_dense_first_stage_is_exact_cosine_search_and_a_second_run_embeds_nothing(
        tiny_model_dir: Path, embedder_dir: Path, tmp_path: Path) -> None:
    done = evaluate(tmp_path, "--model", str(tiny_model_dir), "--first-stage", f"dense:{embedder_dir}", "--top-k",
                    "3", "--output", str(tmp_path / "out.trec"), "--json", str(tmp_path / "m.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "120 documents embedded now" in done.stderr and "0 from the cache" in done.stderr
    first = read_run(tmp_path / "out.first-stage.trec")
    cosine = brute_force_cosine(embedder_dir)
    assert set(first) == set(cosine)
    for qid, ranked in first.items():
        assert_same_ranking(ranked, cosine[qid], 100)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["first_stage"] == f"dense: {embedder_dir} (exact cosine search)"
    [cache] = list((tmp_path / "embeddings").glob("*.npy"))
    kept = cache.stat().st_mtime_ns

    again = evaluate(tmp_path, "--model", str(tiny_model_dir), "--first-stage", f"dense:{embedder_dir}", "--top-k",
                     "3", "--json", str(tmp_path / "again.json"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 documents embedded now" in again.stderr and "120 from the cache" in again.stderr
    assert cache.stat().st_mtime_ns == kept and len(list((tmp_path / "embeddings").glob("*.npy"))) == 1
    assert json.loads((tmp_path / "again.json").read_text())["before"] == metrics["before"]


def test_hybrid_is_reciprocal_rank_fusion_of_bm25_and_dense(tiny_model_dir: Path, embedder_dir: Path,
                                                            tmp_path: Path) -> None:
    done = evaluate(tmp_path, "--model", str(tiny_model_dir), "--first-stage", f"hybrid:{embedder_dir}", "--top-k",
                    "3", "--output", str(tmp_path / "out.trec"))
    assert done.returncode == 0, done.stderr[-3000:]
    queries, documents = labelled_queries(), read_documents(SAMPLE / "corpus.jsonl")
    bm25 = bm25_run(queries, documents, 100)
    cosine = brute_force_cosine(embedder_dir)
    hybrid = read_run(tmp_path / "out.first-stage.trec")
    for qid in queries:
        dense = sorted(cosine[qid], key=lambda d: -cosine[qid][d])[:100]
        fused: dict[str, float] = {}
        for ranking in ([d for d, _ in bm25[qid]], dense):
            for rank, docid in enumerate(ranking, start=1):
                fused[docid] = fused.get(docid, 0.0) + 1 / (60 + rank)
        assert_same_ranking(hybrid[qid], fused, 100)


def test_two_models_in_one_command_give_each_ones_figures_alone(tiny_model_dir: Path, bge_dir: Path,
                                                                tmp_path: Path) -> None:
    common = ["--run", str(SAMPLE / "bm25.trec"), "--top-k", "5"]
    both = evaluate(tmp_path, *common, "--model", str(tiny_model_dir), "--model", str(bge_dir), "--json",
                    str(tmp_path / "both.json"), "--output", str(tmp_path / "both.trec"))
    assert both.returncode == 0, both.stderr[-3000:]
    metrics = json.loads((tmp_path / "both.json").read_text())
    alone = []
    for n, model in enumerate((tiny_model_dir, bge_dir)):
        done = evaluate(tmp_path, *common, "--model", str(model), "--json", str(tmp_path / f"{n}.json"),
                        store=f"alone-{n}.sqlite3")
        assert done.returncode == 0, done.stderr[-3000:]
        alone.append(json.loads((tmp_path / f"{n}.json").read_text()))
    assert metrics["models"] == [str(tiny_model_dir), str(bge_dir)]
    assert [r["model"] for r in metrics["runs"]] == metrics["models"]
    for run, single in zip(metrics["runs"], alone):
        assert run["after"] == pytest.approx(single["after"], abs=1e-9)
        for name, test in run["significance"].items():
            alone_p = single["significance"][name]["p_value"]
            assert test["p_value"] == (alone_p if alone_p is None else pytest.approx(alone_p, abs=1e-9))
        assert single["before"] == metrics["before"]
    assert metrics["after"] == metrics["runs"][0]["after"]  # today's shape: the first run at the top
    [pair] = metrics["comparisons"]
    assert pair["runs"] == [0, 1] and pair["b"]["model"] == str(bge_dir)
    for name, test in pair["measures"].items():
        assert test["difference"] == pytest.approx(alone[1]["after"][name] - alone[0]["after"][name], abs=1e-9)
        assert test["p_value"] is None or 0 <= test["p_value"] <= 1
    assert metrics["runs"][1]["against_first_instruction"]["nDCG@10"]["p_value"] == pair["measures"]["nDCG@10"][
        "p_value"]
    assert read_run(tmp_path / "both.2.trec")  # the second model's run
    assert "between runs at the same depth" in both.stdout


def test_a_depth_sweep_gives_each_depths_figures_of_a_run_at_that_depth(tiny_model_dir: Path, tmp_path: Path) -> None:
    common = ["--model", str(tiny_model_dir), "--run", str(SAMPLE / "bm25.trec")]
    swept = evaluate(tmp_path, *common, "--top-k", "2,5,8", "--json", str(tmp_path / "sweep.json"))
    assert swept.returncode == 0, swept.stderr[-3000:]
    metrics = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["top_k"] for r in metrics["runs"]] == [2, 5, 8] and metrics["top_k"] == 2
    assert metrics["after"] == metrics["runs"][0]["after"]
    qrels = read_qrels(SAMPLE / "qrels" / "test.tsv")
    first = read_run(SAMPLE / "bm25.trec")
    for depth, run in zip(metrics["depths"], metrics["runs"]):
        k = run["top_k"]
        alone = evaluate(tmp_path, *common, "--top-k", str(k), "--json", str(tmp_path / f"{k}.json"),
                         store=f"alone-{k}.sqlite3")
        assert alone.returncode == 0, alone.stderr[-3000:]
        single = json.loads((tmp_path / f"{k}.json").read_text())
        assert run["after"] == pytest.approx(single["after"], abs=1e-9)
        recall = ir_measures.calc_aggregate([ir_measures.parse_measure(f"R@{k}")], qrels,
                                            {q: dict(r) for q, r in first.items()})
        assert depth["top_k"] == k and depth["first_stage_recall"] == pytest.approx(float(next(iter(
            recall.values()))), abs=1e-9)
        assert depth["seconds_per_query"] > 0
    assert metrics["depths"][0]["seconds_per_query"] < metrics["depths"][2]["seconds_per_query"]
    assert "suggested: top" in swept.stdout
    [hint] = metrics["suggested_top_k"]
    best = max(r["after"]["nDCG@10"] for r in metrics["runs"])
    assert hint["top_k"] == min(r["top_k"] for r in metrics["runs"] if r["after"]["nDCG@10"] >= best - 0.01)
    scored = [int(line.split(": ")[1].split()[0].replace(",", "")) for line in swept.stderr.splitlines()
              if "pairs scored now" in line]
    assert len(scored) == 3 and sum(scored) == sum(min(len(r), 8) for r in first.values())  # every pair once


@pytest.mark.parametrize(("args", "says"), [
    (["--run", str(SAMPLE / "bm25.trec"), "--top-k", "5,500"], "--top-k 500 is deeper than the first stage's run"),
    (["--top-k", "ten"], "give a depth (100) or depths separated by commas"),
    (["--first-stage", "dense"], "give bm25, dense:MODEL or hybrid:MODEL"),
    (["--run", str(SAMPLE / "bm25.trec"), "--first-stage", "dense:x"], "give one"),
])
def test_bad_choices_are_named_with_exit_2(tiny_model_dir: Path, tmp_path: Path, args: list[str], says: str) -> None:
    done = evaluate(tmp_path, "--model", str(tiny_model_dir), *args)
    assert done.returncode == 2 and says in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_models_of_the_wrong_kind_are_named_with_exit_2(tiny_model_dir: Path, bge_dir: Path, embedder_dir: Path,
                                                        tmp_path: Path) -> None:
    not_embedding = evaluate(tmp_path, "--model", str(tiny_model_dir), "--first-stage", f"dense:{bge_dir}")
    assert not_embedding.returncode == 2 and "is not an embedding model" in not_embedding.stderr
    assert "BertForSequenceClassification" in not_embedding.stderr and "give it to --model" in not_embedding.stderr
    not_reranker = evaluate(tmp_path, "--model", str(embedder_dir), "--run", str(SAMPLE / "bm25.trec"))
    assert not_reranker.returncode == 2 and "is not a reranker" in not_reranker.stderr
    assert "--first-stage dense:MODEL" in not_reranker.stderr
    assert "Traceback" not in not_embedding.stderr + not_reranker.stderr


def test_a_corpus_too_big_for_exact_search_is_refused_before_embedding(embedder_dir: Path, tmp_path: Path) -> None:
    options = EvaluateOptions(dataset=SAMPLE, first_stage=f"dense:{embedder_dir}", top_k=3,
                              store=tmp_path / "j.sqlite3", exact_search_memory=120 * 32 * 4 - 1)
    with pytest.raises(TooLarge, match=r"exact search over 120 documents of 32 dimensions .* up to about 119 "
                                       r"documents fit\. Give a run of your own approximate index"):
        evaluate_here(options)
    assert not (tmp_path / "embeddings").exists()
