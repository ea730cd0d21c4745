"""The Evaluate page through Streamlit's AppTest, on the tiny real model: the sample and uploads evaluated exactly as
the evaluate command evaluates them, the views drawn, bad files named, and the exports."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from conftest import SCORE_TOLERANCE
from streamlit.testing.v1 import AppTest

from reranker.cli.evaluate_command import EvaluateOptions, evaluate
from reranker.workbench.presets import INSTRUCTION_PRESETS

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "eval_sample"


def table_with(at: AppTest, column: str):
    """The table of the page that has this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.fixture
def page(opened_app, workbench_model) -> AppTest:
    return opened_app().switch_page("views/evaluate.py").run()


def test_the_sample_evaluated_as_the_command_evaluates_it(page: AppTest, tiny_model_dir: Path, tmp_path: Path):
    at = page.number_input(key="eval_top_k").set_value(5).run()
    at = at.button(key="evaluate").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    shown = at.session_state["evaluation"]
    want = evaluate(EvaluateOptions(dataset=SAMPLE, run=SAMPLE / "bm25.trec", top_k=5, backend=str(tiny_model_dir),
                                    instructions=[INSTRUCTION_PRESETS["General web search"]],
                                    store=tmp_path / "judgements.sqlite3")).summary
    assert shown.document["before"] == pytest.approx(want["before"])
    assert shown.document["after"] == pytest.approx(want["after"], abs=SCORE_TOLERANCE)
    assert [r.run for r in shown.reranked][0].keys() == want["per_query"]["after"]["AP"].keys() | set(shown.first)
    table = table_with(at, "measure")
    assert table["measure"].tolist() == ["nDCG@10", "RR@10", "R@100", "AP"] and "run A" in table.columns
    assert [c.key for c in at.get("plotly_chart")] == ["eval_wins", "eval_distribution", "eval_threshold"]
    assert "queries gained" in " ".join(c.value for c in at.caption)
    assert "30 queries evaluated" in " ".join(c.value for c in at.caption)
    assert shown.document["queries_evaluated"] == 30 and shown.document["queries_without_candidates"] == 0
    opened = table_with(at, "before: document")
    assert {"before: document", "before: label", "after: document", "after: label"} <= set(opened.columns)
    assert any("Best F1" in m.value for m in at.markdown)
    assert {b.label for b in at.get("download_button")} == {"Run A (TREC)", "Metrics (JSON)", "Metrics (CSV)",
                                                            "Threshold (JSON)"}


def zipped(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.write(SAMPLE / name, f"my-dataset/{name}")
    return buffer.getvalue()


def test_uploads_a_zip_and_two_runs_compared(page: AppTest) -> None:
    at = page.radio(key="eval_source").set_value("My own files").run()
    assert "Still needed: corpus.jsonl, queries.jsonl (or TSV topics), qrels/test.tsv" in at.info[0].value
    at.get("file_uploader")[0].set_value([("dataset.zip", zipped("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"),
                                           "application/zip"),
                                          ("first-stage.trec", (SAMPLE / "bm25.trec").read_bytes(), "text/plain")])
    at = at.run()
    assert not at.exception and not any("Still needed" in i.value for i in at.info)
    at = at.number_input(key="eval_top_k").set_value(3).run()
    at = at.radio(key="eval_count").set_value(2).run()
    at = at.button(key="evaluate").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    document = at.session_state["evaluation"].document
    assert len(document["instructions"]) == 2 and document["first_stage"] == "first-stage.trec"
    second = document["instructions"][1]
    assert second["instruction"] == INSTRUCTION_PRESETS["Question answering"]
    assert second["against_first_instruction"] is not None
    assert {"run A", "run B", "p A", "p B"} <= set(table_with(at, "measure").columns)


@pytest.mark.parametrize(("name", "text", "says"), [
    ("qrels-test.tsv", b"query-id\tcorpus-id\tscore\nen01\tdoc010\n", "qrels-test.tsv:2: 2 columns"),
    ("corpus.jsonl", b'{"_id": "doc001", "text": "a"}\n{"_id": "doc001", "text": "b"}\n',
     "corpus.jsonl:2: document id 'doc001' again"),
])
def test_a_bad_upload_is_named_by_the_file_the_person_gave(page: AppTest, name: str, text: bytes, says: str) -> None:
    files = {"corpus.jsonl": (SAMPLE / "corpus.jsonl").read_bytes(), "queries.jsonl": (SAMPLE / "queries.jsonl")
             .read_bytes(), "qrels-test.tsv": (SAMPLE / "qrels" / "test.tsv").read_bytes(), name: text}
    at = page.radio(key="eval_source").set_value("My own files").run()
    at.get("file_uploader")[0].set_value([(n, data, "text/plain") for n, data in files.items()])
    at = at.run().button(key="evaluate").click().run()
    assert not at.exception
    assert says in at.main.error[0].value.replace("\\", "") and "/tmp" not in at.main.error[0].value
    assert "evaluation" not in at.session_state


def test_a_file_that_is_no_part_of_a_dataset_is_refused(page: AppTest) -> None:
    at = page.radio(key="eval_source").set_value("My own files").run()
    at.get("file_uploader")[0].set_value(("notes.txt", b"hello", "text/plain"))
    at = at.run()
    assert "notes.txt: not one of a BEIR folder's files" in at.main.error[0].value.replace("\\", "")


def reload_evaluate(at: AppTest) -> AppTest:
    """The Evaluate page opened again in a fresh session at the same address (what a reload is)."""
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    again.query_params.update(at.query_params)
    return again.run().switch_page("views/evaluate.py").run()


def test_the_result_comes_back_after_a_reload_and_a_rerun_scores_nothing_again(page: AppTest) -> None:
    at = page.number_input(key="eval_top_k").set_value(3).run()
    at = at.button(key="evaluate").click().run()
    assert not at.exception and not at.main.error
    first = at.session_state["evaluation"]
    pairs = sum(len(docs) for docs in first.reranked[0].judged.values())
    assert f"{pairs:,} of {pairs:,} pairs scored now" in " ".join(c.value for c in at.caption)

    again = reload_evaluate(at)
    assert not again.exception and again.number_input(key="eval_top_k").value == 3
    back = again.session_state["evaluation"]
    assert back.document == first.document and back.reranked[0].judged == first.reranked[0].judged
    assert {"measure", "run A"} <= set(table_with(again, "measure").columns)
    again = again.button(key="evaluate").click().run()
    assert f"0 of {pairs:,} pairs scored now" in " ".join(c.value for c in again.caption)
    assert again.session_state["evaluation"].document["after"] == first.document["after"]


def test_new_files_mark_the_samples_result_as_old(page: AppTest) -> None:
    at = page.number_input(key="eval_top_k").set_value(2).run()
    at = at.button(key="evaluate").click().run()
    assert not any("changed since this evaluation" in w.value for w in at.warning)
    at = at.radio(key="eval_source").set_value("My own files").run()
    at.get("file_uploader")[0].set_value([("dataset.zip", zipped("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"),
                                           "application/zip")])
    at = at.run()
    assert any("The data, K or the runs changed since this evaluation" in w.value for w in at.warning)


def test_two_runs_are_tested_against_each_other_and_open_a_query_shows_only_what_was_reranked(page: AppTest):
    at = page.number_input(key="eval_top_k").set_value(3).run()
    at = at.radio(key="eval_count").set_value(2).run()
    at = at.button(key="evaluate").click().run()
    assert not at.exception and not at.main.error
    against = table_with(at, "runs")
    assert set(against["runs"]) == {"B vs A"} and len(against) == 4
    shown = at.session_state["evaluation"]
    a, b = shown.reranked
    ndcg = against[against["measure"] == "nDCG@10"].iloc[0]
    mean_a = sum(a.per_query["nDCG@10"].values()) / len(a.per_query["nDCG@10"])
    assert f"A {mean_a:.4f}" in ndcg["means"]
    opened = table_with(at, "before: document")
    assert len(opened) == 3 and all(t and not t.startswith("doc") for t in opened["before: document"])


def test_relevant_and_other_scores_share_their_bins() -> None:
    from reranker.core.ranking import Judgement
    from reranker.workbench.evaluation_view import score_distribution_figure

    judged = {"q": {f"d{n}": Judgement(0.5, n / 7 - 3, 10, False) for n in range(40)}}
    figure = score_distribution_figure(judged, {"q": {f"d{n}": 1 for n in range(0, 40, 5)}})
    other, relevant = figure.data
    assert other.xbins == relevant.xbins and other.xbins.size is not None
    assert "count" in figure.layout.yaxis.title.text and "(8 pairs)" in relevant.name
