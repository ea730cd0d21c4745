"""The instruction comparison page driven through Streamlit's AppTest, on the tiny real model."""

import csv
import io
from itertools import combinations
from pathlib import Path

import pytest
from conftest import LOGIT_TOLERANCE
from streamlit.testing.v1 import AppTest

from reranker.analysis.ranking_metrics import kendall_tau, label_metrics, top_k_overlap
from reranker.formats.exports import EXPORT_COLUMNS, export_csv
from reranker.workbench import frame
from reranker.workbench.presets import INSTRUCTION_PRESETS, load_sample_sets

ROOT = Path(__file__).resolve().parent.parent
PRESETS = list(INSTRUCTION_PRESETS)


@pytest.fixture
def page(workbench_model, tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("RERANKER_DATA_DIR", str(tmp_path / "data"))  # this test's drafts, not the checkout's
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    return at.switch_page("views/compare.py").run()


def frame_with(at: AppTest, column: str):
    """The first table on the page with this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def ranks(reranker, query, documents, instruction) -> list[int]:
    """Each document's rank under `instruction`, in input order."""
    out = [0] * len(documents)
    for d in reranker.rank(query, documents, instruction):
        out[d.index] = d.rank
    return out


def test_three_instructions_side_by_side_with_labels(page, reranker):
    sample = load_sample_sets()[0]
    page.button(key=f"sample_compare_documents_{sample.name}").click().run()
    page.radio(key="compare_count").set_value(3).run()
    at = page.button(key="compare").click().run()
    assert not at.exception and not at.error
    cache = at.session_state["score_cache"]
    assert cache.pairs_scored == 3 * len(sample.documents)

    table = frame_with(at, "rank A")
    expected = {name: ranks(reranker, sample.query, sample.documents, INSTRUCTION_PRESETS[preset])
                for name, preset in zip("ABC", PRESETS)}
    for name, want in expected.items():
        assert table[f"rank {name}"].tolist() == want
    assert table["label"].tolist() == sample.labels

    agreement = frame_with(at, "Kendall tau")
    orders = {n: sorted(range(len(r)), key=r.__getitem__) for n, r in expected.items()}
    assert agreement["runs"].tolist() == ["A vs B", "A vs C", "B vs C"]
    assert agreement["Kendall tau"].tolist() == pytest.approx(
        [kendall_tau(expected[a], expected[b]) for a, b in combinations("ABC", 2)])
    assert agreement["top-5 overlap"].tolist() == pytest.approx(
        [top_k_overlap(orders[a], orders[b], 5) for a, b in combinations("ABC", 2)])

    metrics = frame_with(at, "best")
    ndcg = {n: label_metrics([sample.labels[i] for i in orders[n]], 5)["NDCG@5"] for n in "ABC"}
    assert metrics["NDCG@5"].tolist() == pytest.approx(list(ndcg.values()))
    starred = metrics.loc[metrics["best"] == "★", "run"].tolist()
    assert len(starred) == 1 and ndcg[starred[0]] == max(ndcg.values())
    assert at.main.success[0].value.startswith(f"Best: run {starred[0]}")
    assert [c.key for c in at.get("plotly_chart")] == ["bump_chart", "scatter_chart"]


def test_same_instruction_twice_agrees_fully_and_scores_once(page):
    page.text_input(key="compare_query").input("如何提高睡眠质量？")
    page.text_area(key="compare_documents").input("早睡早起。\n少喝咖啡。\n北京是首都。\n运动有益睡眠。")
    page.selectbox(key="compare_B_preset").set_value(PRESETS[0]).run()
    at = page.button(key="compare").click().run()
    agreement = frame_with(at, "Kendall tau")
    assert agreement["Kendall tau"].tolist() == [1.0] and agreement["top-5 overlap"].tolist() == [1.0]
    assert at.session_state["score_cache"].pairs_scored == 4
    assert not at.main.success  # no labels, no metrics


def test_changing_k_re_renders_without_scoring(page):
    page.text_input(key="compare_query").input("capital")
    page.text_area(key="compare_documents").input("Beijing\t2\nParis\t0\nRome\t1")
    at = page.button(key="compare").click().run()
    comparison, calls = at.session_state["comparison"], at.session_state["score_cache"].backend_calls
    at.number_input(key="compare_k").set_value(1).run()
    assert "top-1 overlap" in frame_with(at, "Kendall tau").columns
    assert "NDCG@1" in frame_with(at, "best").columns
    assert at.session_state["comparison"] is comparison
    assert at.session_state["score_cache"].backend_calls == calls


def test_missing_query_is_a_message(page):
    page.text_area(key="compare_documents").input("one\ntwo")
    at = page.button(key="compare").click().run()
    assert [e.value for e in at.error] == ["Type a query first."]
    assert "comparison" not in at.session_state


def test_a_changed_input_is_told_and_the_compared_query_shown(page):
    page.text_input(key="compare_query").input("capital of <b>China</b>")
    page.text_area(key="compare_documents").input("Beijing\t2\nParis\t0\nRome\t1")
    at = page.button(key="compare").click().run()
    assert not at.warning
    shown = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert "Compared for the query:** capital of <b>China</b>" in shown
    assert set(frame_with(at, "best")["Hit@1"]) <= {"yes", "no"}  # not 0.000 and 0
    assert "Hit@1 yes" in at.main.success[0].value or "Hit@1 no" in at.main.success[0].value

    at.text_input(key="compare_query").input("capital of France").run()
    assert "changed since this comparison" in at.warning[0].value
    assert "capital of <b>China</b>" in " ".join(m.value for m in at.markdown).replace("\\", "")


def test_downloads_hold_every_document_under_every_instruction(page):
    page.text_input(key="compare_query").input("capital")
    page.text_area(key="compare_documents").input("Beijing\t2\nParis\t0\nRome\t1")
    at = page.button(key="compare").click().run()
    assert {b.label for b in at.get("download_button")} >= {"Download CSV", "Download JSON"}
    comparison = at.session_state["comparison"]
    rows = list(csv.DictReader(io.StringIO(export_csv(comparison.records()).decode("utf-8-sig"))))
    assert list(rows[0]) == list(EXPORT_COLUMNS) and len(rows) == 2 * 3
    assert {r["instruction"] for r in rows} == {run.instruction for run in comparison.runs}
    assert sorted(r["label"] for r in rows) == ["0", "0", "1", "1", "2", "2"]


def test_two_models_side_by_side_with_their_own_scores(page, reranker, other_tiny_model_dir):
    from reranker import Qwen3Reranker

    page.text_input(key="compare_query").input("capital of China")
    page.text_area(key="compare_documents").input("Beijing is the capital.\t2\nParis is in France.\t0\n北京。\t1")
    page.selectbox(key="compare_B_model").set_value("Local folder or other id").run()
    at = page.text_input(key="compare_B_model_other").input(str(other_tiny_model_dir)).run()
    assert any("MB of weights" in c.value for c in at.caption)  # its size, told before it loads
    opening = frame.openings().get((str(other_tiny_model_dir), None))
    assert opening.wait(120) and opening.backend is not None
    at.selectbox(key="compare_B_preset").set_value(PRESETS[0]).run()  # the same instruction: only the model differs
    at = at.button(key="compare").click().run()
    assert not at.exception and not at.error

    comparison = at.session_state["comparison"]
    other = Qwen3Reranker(model=str(other_tiny_model_dir), device="cpu")
    documents = comparison.parsed.documents
    want_a = reranker.judge("capital of China", documents, INSTRUCTION_PRESETS[PRESETS[0]])
    want_b = other.judge("capital of China", documents, INSTRUCTION_PRESETS[PRESETS[0]])
    a, b = comparison.runs
    assert a.model == reranker.model_name and b.model == str(other_tiny_model_dir)
    assert a.logits() == pytest.approx([j.logit for j in want_a], abs=1e-4)
    assert b.logits() == pytest.approx([j.logit for j in want_b], abs=1e-4)
    assert a.logits() != pytest.approx(b.logits(), abs=1e-3)  # other weights, other scores
    assert len(at.get("plotly_chart")) == 2  # the bump chart and the scatter
    rows = list(csv.DictReader(io.StringIO(export_csv(comparison.records()).decode("utf-8-sig"))))
    assert {r["model"] for r in rows} == {reranker.model_name, str(other_tiny_model_dir)}


def test_a_model_that_does_not_fit_is_refused_before_it_loads(page, tmp_path):
    import json

    huge = tmp_path / "huge-model"
    huge.mkdir()
    config = json.loads((Path(page.session_state["frame_backend"][0]) / "config.json").read_text())
    config.update(hidden_size=65536, intermediate_size=262144, num_hidden_layers=200)
    (huge / "config.json").write_text(json.dumps(config))
    page.selectbox(key="compare_B_model").set_value("Local folder or other id").run()
    at = page.text_input(key="compare_B_model_other").input(str(huge)).run()
    (error,) = at.error
    assert "is free here, so it is not loaded" in error.value.replace("\\", "")
    assert at.button(key="compare").disabled
    assert not frame.openings().has((str(huge), None))


def test_a_run_on_a_server_beside_one_in_this_process(page, open_sidecar):
    page.text_input(key="compare_query").input("capital of China")
    page.text_area(key="compare_documents").input("Beijing is the capital.\nParis is in France.\n北京。")
    page.selectbox(key="compare_B_model").set_value("A server").run()
    at = page.text_input(key="compare_B_model_other").input(open_sidecar.url).run()
    assert frame.openings().get((open_sidecar.url, None)).wait(30)
    at.selectbox(key="compare_B_preset").set_value(PRESETS[0]).run()
    at = at.button(key="compare").click().run()
    assert not at.exception and not at.error
    a, b = at.session_state["comparison"].runs
    assert a.model == b.model  # the sidecar runs the same tiny model: the same scores, through HTTP
    assert b.logits() == pytest.approx(a.logits(), abs=LOGIT_TOLERANCE)


def test_the_scatter_plots_the_runs_of_the_comparison_on_screen(page, reranker):
    """Compare, change run B's instruction, Compare again: the scatter plots the new run B, not the one before."""
    import json

    query, documents = "What is the capital of China?", ["Beijing is the capital.", "Paris is in France.", "北京。"]
    page.text_input(key="compare_query").input(query)
    page.text_area(key="compare_documents").input("\n".join(documents))
    page.button(key="compare").click().run()
    page.selectbox(key="compare_B_preset").set_value(PRESETS[3]).run()
    at = page.button(key="compare").click().run()

    assert sum("in this process" in m.value for m in at.markdown) == 2  # each run says where its model ran
    [scatter] = [c for c in at.get("plotly_chart") if c.key == "scatter_chart"]
    [points] = [t for t in json.loads(scatter.proto.spec)["data"] if len(t.get("x", ())) == len(documents)]
    for axis, preset in (("x", PRESETS[0]), ("y", PRESETS[3])):
        want = [j.logit for j in reranker.judge(query, documents, INSTRUCTION_PRESETS[preset])]
        assert points[axis] == pytest.approx(want, abs=LOGIT_TOLERANCE)


def test_labels_edited_in_the_box_reach_the_best_run_without_scoring(page):
    documents = ["Beijing is the capital of China.", "Shanghai is a port.", "Gravity pulls things down."]
    page.text_input(key="compare_query").input("What is the capital of China?")
    at = page.text_area(key="compare_documents").input("\n".join(f"{d}\t{g}" for d, g in zip(documents, (2, 0, 0))))
    at = at.run().button(key="compare").click().run()
    scored = at.session_state["score_cache"].pairs_scored
    relabelled = "\n".join(f"{d}\t{g}" for d, g in zip(documents, (0, 0, 2)))
    at = at.text_area(key="compare_documents").input(relabelled).run()
    comparison = at.session_state["comparison"]
    assert comparison.parsed.labels == [0, 0, 2]
    assert frame_with(at, "label")["label"].tolist() == [0, 0, 2]
    metrics = frame_with(at, "best")
    for run in comparison.runs:
        want = label_metrics([comparison.parsed.labels[d.index] for d in run.ranked], 5)["MRR"]
        assert metrics[metrics["run"] == run.name]["MRR"].iloc[0] == pytest.approx(want)
    assert not any("changed since this comparison" in w.value for w in at.warning)
    assert at.session_state["score_cache"].pairs_scored == scored
