"""`python -m reranker finetune`: on a task generated here that the tiny model fails (the relevant documents are the
ones that say "gravity", whatever the query), LoRA on the served logit lifts the held-out queries' nDCG@10 with
p < 0.05; the merged folder scores as the base with its adapters, and opens in the engine and the sidecar; bad input
(too few queries, no negatives, labels that are not grades) is refused with exit 2."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import SCORE_TOLERANCE

from reranker.backends import open_backend
from reranker.cli import main
from reranker.cli.finetune_command import positive_weight
from reranker.engine.finetuning import TrainingPair, base_with_adapter

WORDS = ("capital China Beijing force bodies attracts quick brown fox jumps lazy dog system user query document "
         "answer passage").split()


def synthetic_task(folder: Path, queries: int = 32, relevant: int = 2, other: int = 8, seed: int = 3) -> Path:
    """A BEIR folder and a first-stage run: each query's relevant documents hold the word "gravity", the others
    "code", in random words; the run lists them in a random order."""
    rng = random.Random(seed)
    (folder / "qrels").mkdir(parents=True)
    corpus, topics, qrels, run = [], [], ["query-id\tcorpus-id\tscore"], []
    for n in range(queries):
        topics.append(json.dumps({"_id": f"q{n}", "text": " ".join(rng.sample(WORDS, 3))}))
        documents = [(" ".join([*rng.choices(WORDS, k=6), word, *rng.choices(WORDS, k=2)]), label)
                     for word, label, count in (("gravity", 1, relevant), ("code", 0, other)) for _ in range(count)]
        rng.shuffle(documents)
        for m, (text, label) in enumerate(documents):
            corpus.append(json.dumps({"_id": f"d{n}-{m}", "title": "", "text": text}))
            qrels.append(f"q{n}\td{n}-{m}\t{label}")
            run.append(f"q{n} Q0 d{n}-{m} {m + 1} {len(documents) - m} bm25")
    (folder / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(topics) + "\n")
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    (folder / "run.trec").write_text("\n".join(run) + "\n")
    return folder


def finetune(dataset: Path, model: Path, output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reranker", "finetune", str(dataset), "--model", str(model),
                           "--output", str(output), "--run", str(dataset / "run.trec"), "--top-k", "10", *args],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def tuned(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("finetune")
    dataset = synthetic_task(folder / "task")
    done = finetune(dataset, tiny_model_dir, folder / "tuned", "--hold-out", "0.25", "--epochs", "2",
                    "--negatives-per-positive", "3", "--learning-rate", "2e-3", "--batch-size", "16")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "s left" in done.stderr and "nDCG@10" in done.stdout
    return dataset, folder / "tuned"


def test_tuning_lifts_the_held_out_ndcg_significantly(tuned: tuple[Path, Path]) -> None:
    _, output = tuned
    evaluation = json.loads((output / "evaluation.json").read_text())
    assert len(evaluation["held_out"]) == 8
    assert evaluation["base"]["nDCG@10"] < 0.8  # the random model does not know the task (a random order: ~0.55)
    assert evaluation["tuned"]["nDCG@10"] > 0.95
    ndcg = evaluation["significance"]["nDCG@10"]
    assert ndcg["tuned_minus_base"] > 0.15 and ndcg["p_value"] < 0.05
    assert evaluation["tuned"]["nDCG@10"] == pytest.approx(evaluation["base"]["nDCG@10"] + ndcg["tuned_minus_base"])
    trained_on = {line for line in (output / "README.md").read_text().splitlines()}
    assert any("held out: 8 queries" in line for line in trained_on)
    losses = evaluation["training"]["held_out_losses"]
    assert losses[-1] < losses[0]
    assert (output / "adapter" / "adapter_config.json").is_file()


def test_the_merged_folder_scores_as_the_base_with_its_adapters(tuned: tuple[Path, Path], tiny_model_dir: Path,
                                                                tmp_path: Path) -> None:
    from reranker.testing.sidecar_process import SidecarProcess

    _, output = tuned
    pairs = [TrainingPair("fox dog", text, False) for text in
             ("a brown fox says gravity", "the lazy dog writes code", "capital China Beijing", "gravity force")]
    adapted = base_with_adapter(str(tiny_model_dir), output / "adapter", "cpu")
    want = adapted.logits(pairs).sigmoid().tolist()
    engine = open_backend(str(output))
    got = engine.score("fox dog", [p.document for p in pairs])
    assert got == pytest.approx(want, abs=SCORE_TOLERANCE)
    base = open_backend(str(tiny_model_dir)).score("fox dog", [p.document for p in pairs])
    assert max(abs(a - b) for a, b in zip(got, base)) > 0.01  # the tuned weights, not the base's

    env = {"RERANKER_MODEL": str(output), "RERANKER_DATA_DIR": str(tmp_path / "data"), "RERANKER_API_KEY": ""}
    with SidecarProcess(env=env, log_path=tmp_path / "server.log", command="serve") as server:
        server.wait_healthy()
        answer = requests.post(f"{server.url}/v1/rerank", timeout=60,
                               json={"query": "fox dog", "documents": [p.document for p in pairs]}).json()
    served = sorted(answer["results"], key=lambda r: r["index"])
    assert [r["relevance_score"] for r in served] == pytest.approx(want, abs=SCORE_TOLERANCE)


def refused(capsys: pytest.CaptureFixture[str], dataset: Path, model: Path, output: Path, *args: str) -> str:
    """The command's exit status must be 2 (bad input); what it said. Run in this process (`cli.main`, what
    `python -m reranker` calls): each refusal comes before any model is loaded."""
    status = main(["finetune", str(dataset), "--model", str(model), "--output", str(output), "--run",
                   str(dataset / "run.trec"), *args])
    said = capsys.readouterr().err
    assert status == 2, said
    return said


def test_too_few_queries_no_negatives_and_not_grades_are_refused(tiny_model_dir: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    said = refused(capsys, synthetic_task(tmp_path / "few", queries=5), tiny_model_dir, tmp_path / "out1")
    assert "5 labelled queries" in said and "Label at least" in said

    only_positives = synthetic_task(tmp_path / "positives", queries=12, relevant=3, other=0)
    said = refused(capsys, only_positives, tiny_model_dir, tmp_path / "out2", "--hold-out", "0.3")
    assert "no non-relevant one" in said and "yes to everything" in said

    graded = synthetic_task(tmp_path / "graded", queries=12)
    qrels = graded / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text().replace("\t1\n", "\trelevant\n", 1))
    said = refused(capsys, graded, tiny_model_dir, tmp_path / "out3")
    assert "is not a grade" in said and "whole numbers" in said
    assert not any((tmp_path / name).exists() for name in ("out1", "out2", "out3"))


def test_fewer_negatives_than_positives_are_weighed_to_balance() -> None:
    said: list[str] = []
    pairs = [TrainingPair("q", f"d{n}", n < 6) for n in range(8)]
    assert positive_weight(pairs, said.append) == pytest.approx(2 / 6)
    assert "weighs 0.33" in said[0] and "yes to everything" in said[0]
    assert positive_weight([TrainingPair("q", "a", True), TrainingPair("q", "b", False)], said.append) == 1.0


def test_an_instruction_in_another_language_than_the_queries_is_said() -> None:
    from reranker.core.languages import instruction_language_note

    english = ["What is the capital of China?", "How do I sleep better?", "Why is the sky blue?"]
    chinese = ["中国的首都是哪里？", "如何提高睡眠质量？", "天空为什么是蓝色的？"]
    assert instruction_language_note(None, chinese) is None  # the card's default serves every language
    assert instruction_language_note("Find passages that answer the question", english) is None
    assert instruction_language_note("检索能回答问题的段落", chinese) is None
    note = instruction_language_note("检索能回答问题的段落", english + chinese[:1])
    assert note and "Chinese" in note and "75%" in note and "English" in note
    assert "Chinese" in instruction_language_note("Find passages that answer the question", chinese)
