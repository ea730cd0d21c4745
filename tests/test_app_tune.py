"""The Tune page through Streamlit's AppTest, on the tiny real model: a calibration of the sample shown as the calibrate
command computes it and applied to the model every page scores with; a fine-tuning started as a background job that
a fresh page finds finished, with its before/after table; bad data named in the commands' own words."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from reranker.cli.calibrate_command import calibrate
from reranker.cli.evaluate_command import EvaluateOptions
from reranker.formats.retrieval import labelled_dataset_zip
from reranker.workbench import frame
from reranker.workbench.tuning_view import current_job
from reranker.workbench.widgets import plain_markdown

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "eval_sample"


@pytest.fixture
def page(opened_app, workbench_model) -> AppTest:
    return opened_app().switch_page("views/tune.py").run()


def test_the_sample_calibrated_as_the_command_calibrates_it(page: AppTest, tiny_model_dir: Path, tmp_path: Path):
    at = page.number_input(key="tune_top_k").set_value(5).run()
    at = at.button(key="tune_calibrate").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    path, shown = at.session_state["tune_calibration"]
    want = calibrate(EvaluateOptions(dataset=SAMPLE, run=SAMPLE / "bm25.trec", top_k=5, backend=str(tiny_model_dir),
                                     store=tmp_path / "judgements.sqlite3"), "platt")
    assert shown["pairs"] == want["pairs"] == 115 and shown["ece_before"] == pytest.approx(want["ece_before"], abs=1e-4)
    assert shown["ece_after"] == pytest.approx(want["ece_after"], abs=1e-3)
    assert json.loads(Path(path).read_text())["map"] == shown["map"]
    table = next(d.value for d in at.dataframe if "measure" in d.value.columns)
    assert table["measure"].tolist() == ["ECE", "Brier"]
    assert table["before"].tolist() == pytest.approx([shown["ece_before"], shown["brier_before"]])
    figure = json.loads(next(c for c in at.get("plotly_chart") if c.key == "tune_reliability").proto.spec)
    assert [t["name"] for t in figure["data"]] == ["perfectly calibrated", "before calibration", "after calibration"]
    assert {b.label for b in at.get("download_button")} == {"CAL.json"}

    at = at.button(key="tune_apply").click().run()
    assert at.session_state[frame.CALIBRATION] == path
    at = at.switch_page("views/rerank.py").run()
    assert not at.exception
    fingerprint = json.dumps({"method": "platt", "map": shown["map"]}, sort_keys=True)
    named = plain_markdown(f"{tiny_model_dir} (calibrated {hashlib.sha256(fingerprint.encode()).hexdigest()[:8]})")
    assert named in at.sidebar.success[0].value and named in " ".join(c.value for c in at.caption)

    Path(path).unlink()  # a calibration removed under the workbench: the model scores plainly again, no traceback
    at = at.run()
    assert not at.exception and "calibrated" not in at.sidebar.success[0].value
    assert frame.CALIBRATION not in at.session_state


def test_one_query_of_rerank_labels_is_named_too_few_for_both(page: AppTest):
    """The zip the Rerank page's "Download labels for Evaluate" gives: one query, too few to tune on."""
    labels = labelled_dataset_zip("what attracts bodies", ["gravity attracts bodies", "a quick brown fox",
                                                           "code search", "mass attracts mass"], [1, 0, 0, 2])
    at = page.radio(key="tune_source").set_value("My own files").run()
    at.get("file_uploader")[0].upload("labels.zip", labels, "application/zip")  # type: ignore[attr-defined]
    at = at.run()
    at = at.button(key="tune_calibrate").click().run()
    said = " ".join(e.value for e in at.error)
    assert not at.exception and "1 labelled query judged" in said and "label more queries" in said, said

    at = at.button(key="tune_start").click().run()
    wait_for_the_job()
    at = at.run()
    said = " ".join(e.value for e in at.error)
    assert not at.exception and "1 labelled query" in said and "Label at least" in said, said


def wait_for_the_job(seconds: float = 120) -> None:
    from reranker.workbench.saved_sessions import data_folder

    job = current_job(data_folder())
    assert job is not None
    deadline = time.monotonic() + seconds
    while job.running and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not job.running, job.log_text()


def test_a_fine_tuning_job_ends_with_its_table_on_a_fresh_page(page: AppTest, opened_app, tmp_path: Path):
    at = page.number_input(key="tune_top_k").set_value(3).run()
    at = at.number_input(key="tune_epochs").set_value(1).run()
    at = at.button(key="tune_start").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    wait_for_the_job()

    at = opened_app().switch_page("views/tune.py").run()  # a reload: a new session finds the job by its file
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    table = next(d.value for d in at.dataframe if "tuned" in d.value.columns)
    assert table["measure"].tolist()[0] == "nDCG@10" and {"base", "tuned", "change"} <= set(table.columns)
    loss = json.loads(next(c for c in at.get("plotly_chart") if c.key == "tune_loss").proto.spec)
    assert [t["name"] for t in loss["data"]] == ["training loss (epoch's mean so far)", "held-out loss"]
    assert len(loss["data"][1]["y"]) == 2  # before training and after its one epoch

    at = at.button(key="tune_use").click().run()
    picker = at.sidebar.selectbox(key="model_choice")
    tuned = Path(picker.value)
    assert (tuned / "evaluation.json").is_file() and f"Tuned: {tuned.name}" in picker.options
    assert frame.openings().get(at.session_state["frame_backend"]).wait(120)  # the sidebar loads it in the background
    at = at.switch_page("views/evaluate.py").run()  # offered where a run's model is chosen too
    assert str(tuned) in at.selectbox(key="eval_A_model").options
