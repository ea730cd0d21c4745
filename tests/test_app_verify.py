"""The Verify page through Streamlit's AppTest, on the tiny real model: a model in int8 checked against the exact
engine shows its verdict, its probes, the scatter and the report; a target that cannot be reached is told."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest


@pytest.fixture
def page(opened_app, workbench_model) -> AppTest:
    return opened_app().switch_page("views/verify.py").run()


def test_int8_checked_against_the_exact_engine_is_approximate(page: AppTest, tiny_model_dir: Path) -> None:
    page.text_input(key="verify_target").set_value(f"{tiny_model_dir} (int8)")
    at = page.number_input(key="verify_drift").set_value(0.1).run()
    at = at.button(key="verify_run").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    [report] = at.session_state["verify_reports"]
    assert report["verdict"] == "approximate" and report["reference"] == str(tiny_model_dir)
    assert any(w.value.startswith("APPROXIMATE") for w in at.main.warning)
    probes = next(d.value for d in at.dataframe if "probe" in d.value.columns and "catches" in d.value.columns)
    assert len(probes) == 8 and (probes["verdict"] == "approximate").all()
    assert [c.key for c in at.get("plotly_chart")] == ["verify_scatter_0"]
    assert json.loads(json.dumps(report))["probes"][0]["name"] == "plain_pairs"
    assert [b.label for b in at.get("download_button")] == ["Report (JSON)"]


def test_a_target_that_cannot_be_reached_is_told_and_the_page_goes_on(page: AppTest, tiny_model_dir: Path) -> None:
    page.text_input(key="verify_target").set_value("http://127.0.0.1:9/v1/rerank")
    at = page.text_input(key="verify_reference").set_value(str(tiny_model_dir)).run()
    at = at.button(key="verify_run").click().run()
    assert not at.exception
    assert any("Could not reach" in e.value for e in at.main.error)
    assert "verify_reports" not in at.session_state


def test_with_the_sample_dataset_the_measures_are_compared_side_by_side(page: AppTest, tiny_model_dir: Path) -> None:
    page.text_input(key="verify_target").set_value(f"{tiny_model_dir} (int8)")
    page.number_input(key="verify_drift").set_value(0.1)
    at = page.radio(key="verify_data").set_value("And the sample dataset").run()
    at = at.number_input(key="verify_top_k").set_value(3).run()
    at = at.button(key="verify_run").click().run(timeout=300)
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    [report] = at.session_state["verify_reports"]
    measures = report["measures"]
    assert measures["top_k"] == 3 and measures["queries"] == 30
    shown = next(d.value for d in at.dataframe if "measure" in d.value.columns)
    assert set(shown["measure"]) == set(measures["measures"]) and {"reference", "target", "p"} <= set(shown.columns)
    assert any("On the dataset" in h.value for h in at.subheader)


def test_a_dataset_missing_its_labels_keeps_verify_off_and_says_what_to_add(page: AppTest) -> None:
    page.text_input(key="verify_target").set_value("http://127.0.0.1:9/v1/rerank")
    at = page.radio(key="verify_data").set_value("And my own dataset").run()
    assert not at.exception
    assert at.button(key="verify_run").disabled
    assert any("qrels/test.tsv" in i.value for i in at.info)
