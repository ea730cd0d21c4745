"""`python -m reranker rank`, run as a user would, in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCORE_TOLERANCE

from reranker import DEFAULT_INSTRUCTION, Qwen3Reranker
from reranker.formats.exports import EXPORT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["Beijing is the capital of China.", "", "=HYPERLINK(\"http://x\")", "重力是一种力。", "Paris is in France."]


def run_cli(*args: str, stdin: str | None = None, model: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if model is not None:
        env["RERANKER_MODEL"] = str(model)
    return subprocess.run([sys.executable, "-m", "reranker", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def docs_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "docs.txt"
    path.write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    return path


def test_json_output_ranks_like_the_engine(tiny_model_dir, reranker: Qwen3Reranker, docs_file: Path) -> None:
    result = run_cli("rank", "--query", "capital of China", "--docs", str(docs_file), "--format", "json",
                     model=tiny_model_dir)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    documents = [d for d in DOCS if d]
    expected = reranker.rank("capital of China", documents)
    assert [list(r) for r in payload] == [list(EXPORT_COLUMNS[:-1])] * len(documents)  # the export schema
    assert {(r["query"], r["model"], r["instruction"]) for r in payload} == {
        ("capital of China", str(tiny_model_dir), DEFAULT_INSTRUCTION)}
    assert [r["index"] for r in payload] == [r.index for r in expected]
    assert [r["document"] for r in payload] == [r.document for r in expected]
    assert all(abs(a["score"] - b.score) < 1e-5 for a, b in zip(payload, expected))


def test_table_output_with_top_k_and_instruction(tiny_model_dir, docs_file: Path) -> None:
    result = run_cli("rank", "--query", "首都", "--docs", str(docs_file), "--top-k", "2",
                     "--instruction", "Find the capital", model=tiny_model_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["rank", "score", "log-odds"]
    assert len(lines) == 3 and lines[1].split()[0] == "1" and lines[2].split()[0] == "2"


def test_csv_output_is_spreadsheet_safe_and_reads_stdin(tiny_model_dir) -> None:
    result = run_cli("rank", "--query", "q", "--docs", "-", "--format", "csv", stdin="\n".join(DOCS),
                     model=tiny_model_dir)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout.lstrip("\ufeff"))))
    assert len(rows) == 4 and list(rows[0]) == list(EXPORT_COLUMNS[:-1])
    assert {r["document"] for r in rows} >= {"'=HYPERLINK(\"http://x\")", "重力是一种力。"}


def test_missing_docs_file_is_a_clear_error(tiny_model_dir, tmp_path: Path) -> None:
    result = run_cli("rank", "--query", "q", "--docs", str(tmp_path / "nope.txt"), model=tiny_model_dir)
    assert result.returncode == 2
    assert "cannot read documents" in result.stderr and "Traceback" not in result.stderr


def test_empty_docs_file_is_a_clear_error(tiny_model_dir, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    result = run_cli("rank", "--query", "q", "--docs", str(empty), model=tiny_model_dir)
    assert result.returncode == 2 and "no documents" in result.stderr


def test_unloadable_model_says_how_to_fix_it(docs_file: Path, tmp_path: Path) -> None:
    result = run_cli("rank", "--query", "q", "--docs", str(docs_file), "--model", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert "Could not load the reranker model" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr


def test_rank_on_a_server_gives_the_engines_ranking(open_sidecar, reranker: Qwen3Reranker, docs_file: Path) -> None:
    result = run_cli("rank", "--query", "capital of China", "--docs", str(docs_file), "--format", "json",
                     "--server", open_sidecar.url)
    assert result.returncode == 0, result.stderr
    expected = reranker.rank("capital of China", [d for d in DOCS if d])
    got = json.loads(result.stdout)
    assert [(r["index"], r["tokens"]) for r in got] == [(r.index, r.tokens) for r in expected]
    assert all(abs(a["score"] - b.score) < SCORE_TOLERANCE for a, b in zip(got, expected))


def test_an_unreachable_server_is_one_line_not_a_traceback(docs_file: Path) -> None:
    result = run_cli("rank", "--query", "q", "--docs", str(docs_file), "--server", "http://127.0.0.1:9")
    assert result.returncode == 1 and "Could not reach the reranking server at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
