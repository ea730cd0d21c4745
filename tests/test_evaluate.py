"""`python -m reranker evaluate`: a first stage's run reranked exactly, a valid TREC run written, the before/after
figures equal to trec_eval's (pytrec_eval through ir-measures, reading the files themselves), significance, resuming
from the judgement store, BM25 without a run, and bad input named by file and line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import ir_measures
import pytest
from conftest import SCORE_TOLERANCE

from reranker import Qwen3Reranker
from reranker.cli.evaluate_command import EvaluateOptions
from reranker.cli.evaluate_command import evaluate as evaluate_here
from reranker.formats.retrieval import DatasetError, read_documents, read_queries, read_run

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "eval_sample"
MEASURES = ["nDCG@10", "RR@10", "R@100", "AP"]


def evaluate(tmp_path: Path, model: Path, *args: str, dataset: Path = SAMPLE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reranker", "evaluate", str(dataset), "--model", str(model),
                           "--store", str(tmp_path / "judgements.sqlite3"), *args],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)


def trec_eval(qrels: Path, run: Path) -> dict[str, float]:
    """The means of the measures over the files, as ir-measures (over pytrec_eval, trec_eval's code) reads them."""
    measures = [ir_measures.parse_measure(m) for m in MEASURES]
    found = ir_measures.calc_aggregate(measures, ir_measures.read_trec_qrels(str(qrels)),
                                       ir_measures.read_trec_run(str(run)))
    return {str(m): float(v) for m, v in found.items()}


def test_the_command_reranks_exactly_and_its_figures_are_trec_evals(tiny_model_dir: Path, reranker: Qwen3Reranker,
                                                                    tmp_path: Path) -> None:
    qrels = tmp_path / "qrels.txt"  # the BEIR qrels as TREC qrels, for trec_eval's own reader
    qrels.write_text("".join(f"{line.split()[0]} 0 {line.split()[1]} {line.split()[2]}\n" for line in
                             (SAMPLE / "qrels" / "test.tsv").read_text().splitlines()[1:]))
    done = evaluate(tmp_path, tiny_model_dir, "--run", str(SAMPLE / "bm25.trec"), "--top-k", "5", "--output",
                    str(tmp_path / "out.trec"), "--json", str(tmp_path / "metrics.json"),
                    "--instruction", "Given a question, retrieve passages that answer it", "--instruction", "")
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["before"] == pytest.approx(trec_eval(qrels, SAMPLE / "bm25.trec"), abs=1e-9)
    assert metrics["after"] == pytest.approx(trec_eval(qrels, tmp_path / "out.trec"), abs=1e-9)
    second = metrics["instructions"][1]
    assert second["after"] == pytest.approx(trec_eval(qrels, tmp_path / "out.2.trec"), abs=1e-9)
    assert second["against_first_instruction"]["nDCG@10"]["p_value"] is not None
    for name in MEASURES:
        test = metrics["significance"][name]
        assert test["test"] == "paired t-test, two-sided" and (test["p_value"] is None or 0 <= test["p_value"] <= 1)
    assert "nDCG@10" in done.stdout and "p (paired t)" in done.stdout

    # exactly the engine's order for the top 5; the rest in the first stage's order; scores falling with rank
    first, after = read_run(SAMPLE / "bm25.trec"), read_run(tmp_path / "out.trec")
    queries = read_queries(SAMPLE / "queries.jsonl")
    texts = read_documents(SAMPLE / "corpus.jsonl")
    for qid, ranked in first.items():
        top = [docid for docid, _ in ranked[:5]]
        want = [top[d.index] for d in reranker.rank(queries[qid], [texts[d] for d in top],
                                                     "Given a question, retrieve passages that answer it")]
        assert [docid for docid, _ in after[qid]] == want + [docid for docid, _ in ranked[5:]]
    lines = (tmp_path / "out.trec").read_text().splitlines()
    ranks = [(line.split()[0], int(line.split()[3]), float(line.split()[4])) for line in lines]
    assert all(a[2] > b[2] for a, b in zip(ranks, ranks[1:]) if a[0] == b[0])  # scores agree with ranks

    # a second evaluation with another measure scores nothing again
    again = evaluate(tmp_path, tiny_model_dir, "--run", str(SAMPLE / "bm25.trec"), "--top-k", "5", "--measures",
                     "P@5", "--json", str(tmp_path / "again.json"),
                     "--instruction", "Given a question, retrieve passages that answer it")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 pairs scored now" in again.stderr
    assert json.loads((tmp_path / "again.json").read_text())["after"]["nDCG@10"] == pytest.approx(
        metrics["after"]["nDCG@10"], abs=SCORE_TOLERANCE)
    assert "P@5" in json.loads((tmp_path / "again.json").read_text())["after"]


def test_on_ray_the_figures_are_the_same(local_ray, tiny_model_dir: Path, tmp_path: Path) -> None:
    options = EvaluateOptions(dataset=SAMPLE, run=SAMPLE / "bm25.trec", top_k=3, backend=str(tiny_model_dir),
                              ray_address="local", store=tmp_path / "ray.sqlite3")
    on_ray = evaluate_here(options).summary
    here = evaluate_here(replace(options, ray_address=None, store=tmp_path / "here.sqlite3")).summary
    assert on_ray["after"] == pytest.approx(here["after"], abs=SCORE_TOLERANCE)
    assert on_ray["before"] == here["before"]


def test_without_a_run_bm25_makes_the_first_stage(tiny_model_dir: Path, tmp_path: Path) -> None:
    done = evaluate(tmp_path, tiny_model_dir, "--top-k", "3", "--json", str(tmp_path / "m.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["first_stage"] == "BM25 (bm25s)" and metrics["queries"] == 30
    assert metrics["before"]["R@100"] > 0.5  # BM25 finds most labelled documents of the sample


def broken(tmp_path: Path, name: str, text: str | bytes) -> Path:
    """A copy of the sample with one file replaced."""
    folder = tmp_path / "dataset"
    shutil.copytree(SAMPLE, folder)
    target = folder / name
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")
    return folder


CORPUS_LINE = '{"_id": "doc001", "title": "", "text": "a text"}\n'


@pytest.mark.parametrize(("name", "text", "says"), [
    ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nen01\tdoc010\n", "test.tsv:2: 2 columns"),
    ("queries.jsonl", '{"_id": "en01", "text": "q"}\n{"_id": "en01", "text": "again"}\n',
     "queries.jsonl:2: query id 'en01' again (first on line 1)"),
    ("corpus.jsonl", CORPUS_LINE + CORPUS_LINE, "corpus.jsonl:2: document id 'doc001' again"),
    ("corpus.jsonl", CORPUS_LINE + "{not json\n", "corpus.jsonl:2: not valid JSON"),
    ("corpus.jsonl", "", "the corpus is empty"),
    ("bm25.trec", "en01 Q0 doc999 1 3.0 bm25\n", "not in the corpus: doc999"),
    ("bm25.trec", "xx99 Q0 doc001 1 3.0 bm25\n", "bm25.trec: 1 query of the run is not among the queries: xx99"),
    ("bm25.trec", "en01 Q0 doc001 1 3.0\n", "bm25.trec:1: 5 columns"),
])
def test_bad_input_is_named_by_file_and_line(tiny_model_dir: Path, tmp_path: Path, name: str, text: str,
                                             says: str) -> None:
    folder = broken(tmp_path, name, text)
    done = evaluate(tmp_path, tiny_model_dir, "--run", str(folder / "bm25.trec"), "--top-k", "3", dataset=folder)
    assert done.returncode == 1 and says in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_gbk_files_tsv_topics_and_trec_qrels_are_read(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = broken(tmp_path, "queries.jsonl", "".join(
        json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n"
        for qid, text in read_queries(SAMPLE / "queries.jsonl").items()).encode("gb18030"))
    topics = tmp_path / "topics.tsv"
    topics.write_bytes("".join(f"{q}\t{t}\n" for q, t in read_queries(SAMPLE / "queries.jsonl").items())
                       .encode("gb18030"))
    qrels = tmp_path / "qrels.trec"
    qrels.write_text("".join(f"{line.split()[0]} 0 {line.split()[1]} {line.split()[2]}\n" for line in
                             (SAMPLE / "qrels" / "test.tsv").read_text().splitlines()[1:]))
    one = evaluate(tmp_path, tiny_model_dir, "--run", str(SAMPLE / "bm25.trec"), "--top-k", "3", "--json",
                   str(tmp_path / "gbk.json"), dataset=folder)
    other = evaluate(tmp_path, tiny_model_dir, "--run", str(SAMPLE / "bm25.trec"), "--top-k", "3", "--queries",
                     str(topics), "--qrels", str(qrels), "--json", str(tmp_path / "tsv.json"))
    assert one.returncode == 0 and other.returncode == 0, one.stderr[-1500:] + other.stderr[-1500:]
    assert json.loads((tmp_path / "gbk.json").read_text())["after"] == json.loads(
        (tmp_path / "tsv.json").read_text())["after"]


def test_a_big_corpus_is_streamed_not_loaded_whole(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    line = json.dumps({"_id": "{}", "title": "", "text": "word " * 190})[:-1]  # about 1 kB a line
    with corpus.open("w") as out:
        for n in range(202_000):  # over 200 MB
            out.write(line.replace("{}", f"d{n}", 1) + "}\n")
    code = ("import resource, sys; from reranker.formats.retrieval import read_documents; "
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            f"texts = read_documents({str(corpus)!r}, {{'d5', 'd201999'}}); "
            "print(len(texts), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    kept, grown_kb = map(int, done.stdout.split())
    assert kept == 2 and grown_kb < 80 * 1024  # 200 MB read; the ids seen and two texts kept
    assert corpus.stat().st_size > 200_000_000
    with pytest.raises(DatasetError, match="not in the corpus: nope"):
        read_documents(corpus, {"nope"})


def pytrec_means(qrels: dict[str, dict[str, int]], run: dict[str, list[tuple[str, float]]],
                 topics: list[str]) -> dict[str, float]:
    """nDCG@10, RR@10, R@100 and AP averaged over `topics` by pytrec_eval itself (trec_eval's code) on the labels of
    the topics alone; a topic the run lacks counts 0."""
    import pytrec_eval

    labels = {q: qrels[q] for q in topics}
    values: dict[str, list[float]] = {m: [] for m in MEASURES}
    deep = pytrec_eval.RelevanceEvaluator(labels, {"ndcg_cut.10", "recall.100", "map"}).evaluate(
        {q: {d: s for d, s in run[q]} for q in topics if q in run})
    top10 = pytrec_eval.RelevanceEvaluator(labels, {"recip_rank"}).evaluate(
        {q: {d: s for d, s in sorted(run[q], key=lambda p: -p[1])[:10]} for q in topics if q in run})
    for q in topics:
        found, first = deep.get(q, {}), top10.get(q, {})
        values["nDCG@10"].append(found.get("ndcg_cut_10", 0.0))
        values["RR@10"].append(first.get("recip_rank", 0.0))
        values["R@100"].append(found.get("recall_100", 0.0))
        values["AP"].append(found.get("map", 0.0))
    return {m: sum(v) / len(v) for m, v in values.items()}


def test_a_subset_of_the_topics_is_averaged_over_itself_and_a_topic_without_candidates_counts_0(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    """A held-out split: 8 of the sample's 30 queries as topics, the full qrels, a run that holds every relevant
    document of 7 of them and nothing of the 8th. Before the fix R@100 read 7/30 of what it is."""
    queries = read_queries(SAMPLE / "queries.jsonl")
    qrels = {q: {} for q in queries}
    for line in (SAMPLE / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, docid, grade = line.split("\t")
        qrels[qid][docid] = int(grade)
    topics = [q for q in queries if qrels[q]][:8]
    held = tmp_path / "held_out.tsv"
    held.write_text("".join(f"{q}\t{queries[q]}\n" for q in topics), encoding="utf-8")
    others = sorted(read_documents(SAMPLE / "corpus.jsonl"))[:6]
    run = {q: [(d, float(20 - n)) for n, d in enumerate(
        [*(d for d, g in qrels[q].items() if g > 0), *(d for d in others if d not in qrels[q])])]
        for q in topics[:7]}
    run_file = tmp_path / "held_out.trec"
    run_file.write_text("".join(f"{q} Q0 {d} {n + 1} {s} mine\n" for q, ranked in run.items()
                                for n, (d, s) in enumerate(ranked)))

    done = evaluate(tmp_path, tiny_model_dir, "--queries", str(held), "--run", str(run_file), "--top-k", "3",
                    "--json", str(tmp_path / "m.json"), "--output", str(tmp_path / "out.trec"))
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["queries_evaluated"] == 8 and metrics["queries_without_candidates"] == 1
    assert metrics["query_ids_without_candidates"] == [topics[7]]
    assert "8 queries evaluated" in done.stdout and "1 of 8 has no candidates" in done.stdout
    assert set(metrics["per_query"]["before"]["R@100"]) == set(topics)
    assert metrics["per_query"]["before"]["R@100"][topics[7]] == 0.0
    assert metrics["before"]["R@100"] == pytest.approx(7 / 8)  # every relevant document of 7 topics is in the run
    assert metrics["before"] == pytest.approx(pytrec_means(qrels, run, topics), abs=1e-9)
    assert metrics["after"] == pytest.approx(pytrec_means(qrels, read_run(tmp_path / "out.trec"), topics), abs=1e-9)
    for name in MEASURES:  # the paired test pairs the 8 topics, not the 30 labelled queries
        assert set(metrics["per_query"]["after"][name]) == set(topics)


def test_measure_leaves_out_labelled_queries_outside_the_topics() -> None:
    from reranker.analysis.evaluation import measure, parse_measures

    qrels = {"a": {"d1": 1}, "b": {"d2": 1}, "c": {"d3": 1}}
    run = {"a": [("d1", 2.0), ("d9", 1.0)], "x": [("d1", 1.0)]}
    found = measure(qrels, run, parse_measures([]), topics=["a", "b", "x"])
    assert found["R@100"] == {"a": 1.0, "b": 0.0}  # b asked but not ranked: 0; c not asked; x has no labels
    assert measure(qrels, {}, parse_measures([]), topics=["a"])["nDCG@10"] == {"a": 0.0}
