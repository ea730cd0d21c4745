"""`python -m reranker batch` on a real local Ray, started once for this module and joined by the CLI test."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import SCORE_TOLERANCE

from reranker import DEFAULT_INSTRUCTION, Query, Qwen3Reranker
from reranker.cli.ray_batch import BatchFailed, BatchOptions, run_batch_file
from reranker.testing.sidecar_process import ROOT

CAPITAL = "中国的首都是哪里？"
SLEEP = "How do I sleep better?"
OWN_INSTRUCTION = "Given a question, retrieve passages that answer it"
CSV = (
    "query,document,label,source\n"
    f"{CAPITAL},北京是中国的首都。,2,wiki\n"
    f"{SLEEP},Keep a regular bedtime.,2,blog\n"
    f"{CAPITAL},上海是中国最大的城市。,0,wiki\n"
    f"{CAPITAL},=1+1,0,spam\n"
    f"{SLEEP},A recipe for braised pork.,high,blog\n"  # a bad label: left out, reported
    f"{SLEEP},too,many,fields,here\n"  # a bad row: left out, reported
    f"{CAPITAL},,1,empty\n"  # an empty document: left out, reported
    f"{SLEEP},\"Dim the lights, put the phone away.\",1,blog\n"
)


def expected(reranker: Qwen3Reranker, rows: pd.DataFrame) -> list[float]:
    return [reranker.judge_many([Query(q, [d], i)])[0][0].score
            for q, d, i in zip(rows["query"], rows["document"], rows["instruction"])]


def test_a_csv_is_scored_ranked_and_its_bad_rows_reported(local_ray, tiny_model_dir: Path, reranker, tmp_path: Path):
    source, output = tmp_path / "pairs.csv", tmp_path / "scored.csv"
    source.write_text(CSV, encoding="utf-8")
    said: list[str] = []
    result = run_batch_file(str(source), str(output), BatchOptions(backend=str(tiny_model_dir)), said.append)
    assert [s for s in said if s.startswith("left out")] == [
        "left out: line 6: the label 'high' is not a number",
        "left out: line 7: 5 fields where the header has 4; the row could not be read",
        "left out: line 8: the query or the document is empty or not text"]
    assert list(result.columns) == ["query", "document", "instruction", "model", "rank", "index", "score", "logit",
                                    "tokens", "truncated", "label", "source"]
    assert result["document"].tolist()[:2] == ["北京是中国的首都。", "Keep a regular bedtime."]  # input order
    assert result["score"].tolist() == pytest.approx(expected(reranker, result), abs=SCORE_TOLERANCE)
    assert set(result["instruction"]) == {DEFAULT_INSTRUCTION} and set(result["model"]) == {str(tiny_model_dir)}
    for _, group in result.groupby("query"):
        best_first = group.sort_values("logit", ascending=False)
        assert best_first["rank"].tolist() == list(range(1, len(group) + 1))
    written = pd.read_csv(output, encoding="utf-8-sig")
    assert written["document"].tolist()[3] == "'=1+1"  # a spreadsheet shows it as text
    assert written["score"].tolist() == pytest.approx(result["score"].tolist(), abs=1e-9)


def test_the_batch_command_in_int8_scores_as_the_int8_engine_and_names_it(local_ray, tiny_model_dir: Path,
                                                                          tmp_path: Path):
    source, output = tmp_path / "pairs.csv", tmp_path / "scored.csv"
    source.write_text("query,document\nWhat is the capital of China?,Beijing.\n"
                      "What is the capital of China?,Gravity pulls things down.\n", encoding="utf-8")
    result = run_batch_file(str(source), str(output), BatchOptions(backend=str(tiny_model_dir), dtype="int8"),
                            lambda _: None)
    assert set(result["model"]) == {f"{tiny_model_dir} (int8)"}
    int8 = Qwen3Reranker(str(tiny_model_dir), device="cpu", dtype="int8")
    assert result["score"].tolist() == pytest.approx(expected(int8, result), abs=SCORE_TOLERANCE)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_jsonl_and_parquet_keep_text_exactly_and_honour_each_rows_instruction(
        local_ray, tiny_model_dir: Path, reranker, tmp_path: Path, suffix: str):
    rows = [{"query": CAPITAL, "document": "=1+1", "instruction": OWN_INSTRUCTION},
            {"query": CAPITAL, "document": "北京是中国的首都。", "instruction": ""},
            {"query": SLEEP, "document": "Keep a regular bedtime.", "instruction": None}]
    source = tmp_path / "pairs.jsonl"
    source.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{not json\n", encoding="utf-8")
    output = tmp_path / f"scored{suffix}"
    said: list[str] = []
    run_batch_file(str(source), str(output), BatchOptions(backend=str(tiny_model_dir), instruction="Find answers"),
                   said.append)
    assert "left out: line 4: not valid JSON; the row could not be read" in said
    written = pd.read_json(output, lines=True) if suffix == ".jsonl" else pd.read_parquet(output)
    assert written["document"].tolist() == ["=1+1", "北京是中国的首都。", "Keep a regular bedtime."]
    assert written["instruction"].tolist() == [OWN_INSTRUCTION, "Find answers", "Find answers"]
    assert written["score"].tolist() == pytest.approx(expected(reranker, written), abs=SCORE_TOLERANCE)


def test_a_server_backend_scores_through_ray_like_the_engine(local_ray, open_sidecar, reranker, tmp_path: Path):
    source, output = tmp_path / "pairs.tsv", tmp_path / "scored.tsv"
    source.write_text(CSV.replace(",", "\t").replace('"Dim the lights\t put the phone away."', "Dim the lights."),
                      encoding="utf-8")
    result = run_batch_file(str(source), str(output), BatchOptions(backend=open_sidecar.url, workers=2),
                            lambda _: None)
    assert result["score"].tolist() == pytest.approx(expected(reranker, result), abs=SCORE_TOLERANCE)
    assert pd.read_csv(output, sep="\t", encoding="utf-8-sig")["rank"].tolist() == result["rank"].tolist()


def test_a_failing_backend_writes_nothing_and_says_why(local_ray, tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    source, output = tmp_path / "pairs.csv", tmp_path / "scored.csv"
    source.write_text(CSV, encoding="utf-8")
    with pytest.raises(BatchFailed, match=f"nothing was written.*Could not reach the reranking server at {dead}"):
        run_batch_file(str(source), str(output), BatchOptions(backend=dead), lambda _: None)
    assert not output.exists() and not list(tmp_path.glob(".*partial"))


def test_the_cli_joins_a_running_ray_and_refuses_a_file_without_pairs(local_ray, tiny_model_dir: Path,
                                                                        reranker, tmp_path: Path):
    address = local_ray.get_runtime_context().gcs_address
    source, output = tmp_path / "pairs.csv", tmp_path / "out.parquet"
    source.write_text(CSV, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "reranker", "batch", str(source), "--output", str(output),
                           "--model", str(tiny_model_dir), "--ray", address], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "left out: line 7" in done.stderr and "wrote 5 rows" in done.stderr
    written = pd.read_parquet(output)
    assert written["score"].tolist() == pytest.approx(expected(reranker, written), abs=SCORE_TOLERANCE)

    (tmp_path / "names.csv").write_text("name,city\nAda,London\n", encoding="utf-8")
    refused = subprocess.run([sys.executable, "-m", "reranker", "batch", str(tmp_path / "names.csv"), "--output",
                              str(tmp_path / "x.csv"), "--ray", address], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 1 and "no column looks like the query" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(("content", "name", "words"), [
    ("query,document,query\nq,d,r\n", "dup.csv", "'query' more than once"),
    ('{"query": "q", "document": "d", "label": [1]}\n{"query": "q", "document": "e"}\n', "odd.jsonl", None),
])
def test_odd_files_are_told_or_their_rows_left_out(tmp_path: Path, content: str, name: str, words: str | None):
    from reranker.formats.pair_files import read_pairs
    from reranker.formats.tables import TableError

    (tmp_path / name).write_text(content, encoding="utf-8")
    if words is not None:
        with pytest.raises(TableError, match=words):
            read_pairs(tmp_path / name)
        return
    table = read_pairs(tmp_path / name)
    assert len(table.rows) == 1 and table.problems == ["line 1: the label [1] is not a number"]


def test_an_output_that_cannot_be_written_is_refused_before_scoring(tmp_path: Path):
    (tmp_path / "pairs.csv").write_text(CSV, encoding="utf-8")
    with pytest.raises(BatchFailed, match="does not exist; nothing was scored"):
        run_batch_file(str(tmp_path / "pairs.csv"), str(tmp_path / "no" / "out.csv"), BatchOptions(), print)
    with pytest.raises(Exception, match="unknown file type '.xlsx'"):
        run_batch_file(str(tmp_path / "pairs.csv"), str(tmp_path / "out.xlsx"), BatchOptions(), print)
