"""`python -m reranker calibrate`: on a dataset whose true relevance probability is known (labels drawn in the test from
a known function of the tiny model's own log-odds), the fitted map is close to the truth and the calibration error
falls; a calibration applied through the CLI and the API changes scores, names them, and never the ranking."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from reranker import Qwen3Reranker
from reranker.cli import main
from reranker.core.calibrated import CalibratedBackend, load_calibration
from reranker.core.model_names import model_and_dtype
from reranker.core.ranking import Query

WORDS = ("gravity capital China Beijing force bodies attracts quick brown fox jumps lazy dog code system user "
         "query document answer passage").split()
QUERIES, DOCUMENTS = 40, 15
SLOPE, CENTRE = 0.6, -4.0
"""The truth: P(relevant | logit x) = sigmoid(SLOPE * (x - CENTRE)); the tiny model's own sigmoid(x) is far off."""


def true_probability(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-SLOPE * (logit - CENTRE)))


def known_dataset(folder: Path, reranker: Qwen3Reranker) -> tuple[Path, list[float]]:
    """A BEIR folder and a run: QUERIES queries of DOCUMENTS documents each, every pair labelled 1 with its true
    probability (drawn with a seed); the logits the model gives its pairs."""
    rng = random.Random(7)
    queries = [Query(" ".join(rng.sample(WORDS, 3)), [" ".join(rng.choices(WORDS, k=8)) for _ in range(DOCUMENTS)])
               for _ in range(QUERIES)]
    verdicts = reranker.judge_many(queries)
    (folder / "qrels").mkdir(parents=True)
    corpus, topics, qrels, run, logits = [], [], ["query-id\tcorpus-id\tscore"], [], []
    for n, (q, judged) in enumerate(zip(queries, verdicts)):
        topics.append(json.dumps({"_id": f"q{n}", "text": q.query}))
        for m, (text, j) in enumerate(zip(q.documents, judged)):
            docid = f"d{n}-{m}"
            corpus.append(json.dumps({"_id": docid, "title": "", "text": text}))
            qrels.append(f"q{n}\t{docid}\t{int(rng.random() < true_probability(j.logit))}")
            run.append(f"q{n} Q0 {docid} {m + 1} {DOCUMENTS - m} bm25")
            logits.append(j.logit)
    (folder / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(topics) + "\n")
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    (folder / "run.trec").write_text("\n".join(run) + "\n")
    return folder, logits


@pytest.fixture(scope="module")
def dataset(reranker: Qwen3Reranker, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    return known_dataset(tmp_path_factory.mktemp("calibration") / "known", reranker)


def reranker_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reranker", *args], capture_output=True, text=True, timeout=600,
                          env=env)


@pytest.fixture(scope="module")
def calibrations(dataset, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CAL.json of each method, made by the command on the known dataset."""
    folder, _ = dataset
    made = {}
    for method in ("platt", "isotonic"):
        made[method] = tmp_path_factory.mktemp("cal") / "cal.json"
        calibrate(folder, tiny_model_dir, made[method], method)
    return made


def calibrate(folder: Path, model: Path, out: Path, method: str) -> dict:
    done = reranker_cli("calibrate", str(folder), "--run", str(folder / "run.trec"), "--top-k", str(DOCUMENTS),
                        "--model", str(model), "--method", method, "--store", str(folder / "judgements.sqlite3"),
                        "--output", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ECE" in done.stdout and "Brier" in done.stdout
    return json.loads(out.read_text())


@pytest.mark.parametrize(("method", "tolerance"), [("platt", 0.05), ("isotonic", 0.1)])
def test_the_map_finds_the_true_probability_and_the_error_falls(dataset, calibrations: dict[str, Path],
                                                                 method: str, tolerance: float) -> None:
    _, logits = dataset
    document = json.loads(calibrations[method].read_text())
    assert document["method"] == method and document["pairs"] == QUERIES * DOCUMENTS
    assert document["ece_after"] < document["ece_before"] / 3
    assert document["brier_after"] < document["brier_before"]
    fitted = load_calibration(calibrations[method])  # plain JSON numbers, read back without pickle
    grid = sorted(logits)[len(logits) // 20::len(logits) // 10]  # the logits' deciles, inside the data
    error = sum(abs(fitted.probability(x) - true_probability(x)) for x in grid) / len(grid)
    assert error < tolerance, (error, [(x, fitted.probability(x), true_probability(x)) for x in grid])
    if method == "platt":
        assert document["map"]["slope"] == pytest.approx(SLOPE, rel=0.3)
    bins = document["reliability"]["after"]
    assert len(bins) == 10 and sum(b["pairs"] for b in bins) == QUERIES * DOCUMENTS


def test_a_calibration_changes_scores_and_names_never_the_ranking(calibrations: dict[str, Path],
                                                                  tiny_model_dir: Path, tmp_path: Path) -> None:
    calibration = calibrations["isotonic"]
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(" ".join(random.Random(n).choices(WORDS, k=8)) for n in range(12)) + "\n")
    ranked = {}
    for name, extra in (("plain", ()), ("calibrated", ("--calibration", str(calibration)))):
        done = reranker_cli("rank", "--query", "gravity force", "--docs", str(docs), "--model", str(tiny_model_dir),
                            "--format", "json", *extra)
        assert done.returncode == 0, done.stderr[-3000:]
        ranked[name] = json.loads(done.stdout)
    plain, calibrated = ranked["plain"], ranked["calibrated"]
    assert [r["index"] for r in calibrated] == [r["index"] for r in plain]
    assert [r["logit"] for r in calibrated] == [r["logit"] for r in plain]
    assert [r["score"] for r in calibrated] != [r["score"] for r in plain]
    fitted = load_calibration(calibration)
    assert [r["score"] for r in calibrated] == pytest.approx([fitted.probability(r["logit"]) for r in plain])
    name = calibrated[0]["model"]
    assert name == f"{tiny_model_dir} (calibrated {fitted.fingerprint})"
    assert model_and_dtype(name) == (str(tiny_model_dir), None)
    assert model_and_dtype(f"{tiny_model_dir} (int8, calibrated {fitted.fingerprint})") == (str(tiny_model_dir),
                                                                                            "int8")

    broken = tmp_path / "broken.json"
    broken.write_text('{"method": "isotonic", "map": {"logits": [1, 0], "probabilities": [0.1, 0.2]}}')
    refused = reranker_cli("rank", "--query", "q", "--docs", str(docs), "--model", str(tiny_model_dir),
                           "--calibration", str(broken))
    assert refused.returncode == 2 and "logits must ascend" in refused.stderr


def test_the_api_serves_calibrated_scores_in_the_same_order(calibrations: dict[str, Path], tiny_model_dir: Path,
                                                            reranker: Qwen3Reranker, tmp_path: Path) -> None:
    from reranker.testing.sidecar_process import SidecarProcess

    calibration = calibrations["platt"]
    fitted = load_calibration(calibration)
    documents = [" ".join(random.Random(n).choices(WORDS, k=8)) for n in range(10)]
    env = {"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(tmp_path / "data"), "RERANKER_API_KEY": "",
           "RERANKER_CALIBRATION": str(calibration)}
    with SidecarProcess(env=env, log_path=tmp_path / "server.log", command="serve") as server:
        health = server.wait_healthy()
        answer = requests.post(f"{server.url}/v1/rerank", json={"query": "gravity force", "documents": documents},
                               timeout=60).json()
    assert f"calibrated {fitted.fingerprint}" in str(health["model"])
    want = CalibratedBackend(reranker, fitted).rank("gravity force", documents)
    assert [r["index"] for r in answer["results"]] == [d.index for d in reranker.rank("gravity force", documents)]
    assert [r["index"] for r in answer["results"]] == [d.index for d in want]
    assert [r["relevance_score"] for r in answer["results"]] == pytest.approx([d.score for d in want], abs=1e-5)


def test_one_class_and_labels_that_are_not_grades_are_refused(tiny_model_dir: Path, tmp_path: Path, dataset,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = dataset
    qrels = folder / "qrels" / "test.tsv"
    lines = qrels.read_text().splitlines()
    one_class = tmp_path / "none-relevant.tsv"
    one_class.write_text("\n".join([lines[0], *(line[:-1] + "0" for line in lines[1:])]) + "\n")
    status = main(["calibrate", str(folder), "--run", str(folder / "run.trec"), "--top-k", "3", "--model",
                   str(tiny_model_dir), "--qrels", str(one_class), "--store", str(tmp_path / "j.sqlite3"),
                   "--output", str(tmp_path / "cal.json")])
    said = capsys.readouterr().err
    assert status == 2 and "none of the" in said and "is relevant" in said and "add relevant labels" in said
    not_grades = tmp_path / "not-grades.tsv"
    not_grades.write_text(f"{lines[0]}\n{lines[1][:-1]}0.7\n")
    status = main(["calibrate", str(folder), "--model", str(tiny_model_dir), "--qrels", str(not_grades),
                   "--output", str(tmp_path / "cal.json")])
    said = capsys.readouterr().err
    assert status == 2 and "is not a grade" in said
    assert not (tmp_path / "cal.json").exists()


def test_evaluate_with_a_calibration_measures_the_same_and_finds_thresholds_in_probability(
        dataset, calibrations: dict[str, Path], tiny_model_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = dataset
    figures = {}
    for name, extra in (("plain", []), ("calibrated", ["--calibration", str(calibrations["platt"])])):
        status = main(["evaluate", str(folder), "--run", str(folder / "run.trec"), "--top-k", "5", "--model",
                       str(tiny_model_dir), "--store", str(tmp_path / "j.sqlite3"), "--json",
                       str(tmp_path / f"{name}.json"), *extra])
        assert status == 0, capsys.readouterr().err
        figures[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert figures["calibrated"]["after"] == figures["plain"]["after"]  # the same ranking, so the same measures
    fitted = load_calibration(calibrations["platt"])
    for name in ("plain", "calibrated"):
        best = figures[name]["threshold"]["best_f1"]
        probability = fitted.probability(best["logit"]) if name == "calibrated" else 1 / (1 + math.exp(-best["logit"]))
        assert best["score"] == pytest.approx(probability, abs=1e-6)
    assert "calibrated" in figures["calibrated"]["model"]
