"""The Evaluate page's first stages and depth sweep through Streamlit's AppTest, on the tiny real models: several
depths from one scoring equal the command's single-depth runs, the curve drawn with its ceiling and suggested K, a
dense first stage made with a tiny embedding model, and a model that embeds nothing named without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SCORE_TOLERANCE
from streamlit.testing.v1 import AppTest

from reranker.cli.evaluate_command import EvaluateOptions, evaluate
from reranker.formats.retrieval import read_documents, read_queries
from reranker.workbench.depth_view import depth_figure, run_curves
from reranker.workbench.presets import INSTRUCTION_PRESETS

pytest.importorskip("sentence_transformers")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "eval_sample"
INSTRUCTION = INSTRUCTION_PRESETS["General web search"]


@pytest.fixture
def page(opened_app, workbench_model) -> AppTest:
    return opened_app().switch_page("views/evaluate.py").run()


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reranker.testing.random_encoders import build_embedding_model, vocabulary_of

    texts = [*read_documents(SAMPLE / "corpus.jsonl").values(), *read_queries(SAMPLE / "queries.jsonl").values()]
    return build_embedding_model(tmp_path_factory.mktemp("models") / "tiny-embedder", vocabulary_of(texts))


def test_two_depths_from_one_scoring_equal_two_runs_of_the_command(page: AppTest, tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    at = page.number_input(key="eval_top_k").set_value(3).run()
    at = at.text_input(key="eval_depths").set_value("5").run()
    at = at.button(key="evaluate").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    document = at.session_state["evaluation"].document
    assert document["top_ks"] == [3, 5] and document["top_k"] == 3
    sweep = evaluate(EvaluateOptions(dataset=SAMPLE, run=SAMPLE / "bm25.trec", depths=[3, 5],
                                     backend=str(tiny_model_dir), instructions=[INSTRUCTION],
                                     store=tmp_path / "sweep.sqlite3")).summary
    for k in (3, 5):
        alone = evaluate(EvaluateOptions(dataset=SAMPLE, run=SAMPLE / "bm25.trec", top_k=k,
                                         instructions=[INSTRUCTION], backend=str(tiny_model_dir),
                                         store=tmp_path / f"k{k}.sqlite3")).summary
        at_k = next(run for run in document["runs"] if run["top_k"] == k)
        assert at_k["after"] == pytest.approx(alone["after"], abs=SCORE_TOLERANCE)
    assert [d["first_stage_recall"] for d in document["depths"]] == pytest.approx(
        [d["first_stage_recall"] for d in sweep["depths"]])
    curve = run_curves(document, ["A"])["A"]
    assert [p.top_k for p in curve] == [3, 5]
    assert [p.first_stage_recall for p in curve] == pytest.approx([d["first_stage_recall"] for d in sweep["depths"]])
    assert "eval_depth_curve" in [c.key for c in at.get("plotly_chart")]
    names = [trace.name for trace in depth_figure(run_curves(document, ["A"])).data]
    assert "first stage R@K (ceiling)" in names and "run A: nDCG@10" in names
    said = " ".join(m.value for m in at.markdown)
    assert "Suggested K" in said and "run A: K = " in said


def test_a_dense_first_stage_made_on_the_page(page: AppTest, embedder_dir: Path, tiny_model_dir: Path,
                                              tmp_path: Path) -> None:
    at = page.radio(key="eval_stage").set_value("dense").run()
    at = at.text_input(key="eval_embedder").set_value(str(embedder_dir)).run()
    at = at.number_input(key="eval_top_k").set_value(2).run()
    at = at.button(key="evaluate").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    shown = at.session_state["evaluation"]
    assert shown.document["first_stage"].startswith(f"dense: {embedder_dir}")
    command = evaluate(EvaluateOptions(dataset=SAMPLE, first_stage=f"dense:{embedder_dir}", top_k=2,
                                       backend=str(tiny_model_dir), instructions=[INSTRUCTION],
                                       store=tmp_path / "dense.sqlite3"))
    assert shown.first == command.first
    assert shown.document["before"] == pytest.approx(command.summary["before"])
    assert "First stage (TREC)" in {b.label for b in at.get("download_button")}


def test_a_model_that_is_no_embedding_model_is_named(page: AppTest, tiny_model_dir: Path) -> None:
    at = page.radio(key="eval_stage").set_value("hybrid").run()
    at = at.text_input(key="eval_embedder").set_value(str(tiny_model_dir)).run()
    at = at.button(key="evaluate").click().run()
    assert not at.exception
    errors = [e.value for e in at.main.error]
    assert errors and "is not an embedding model" in errors[0], errors
    assert "evaluation" not in at.session_state


def test_a_cross_encoder_beside_the_sidebars_model_at_two_depths(page: AppTest, tmp_path: Path) -> None:
    from reranker.testing.random_encoders import build_cross_encoder, vocabulary_of
    from reranker.workbench import frame
    from reranker.workbench.run_models import OTHER

    texts = [*read_documents(SAMPLE / "corpus.jsonl").values(), *read_queries(SAMPLE / "queries.jsonl").values()]
    bge = build_cross_encoder(tmp_path / "tiny-bge", vocabulary_of(texts))
    at = page.radio(key="eval_count").set_value(2).run()
    at = at.selectbox(key="eval_B_model").set_value(OTHER).run()
    at = at.text_input(key="eval_B_model_other").set_value(str(bge)).run()
    assert frame.openings().get((str(bge), None)).wait(120)
    at = at.number_input(key="eval_top_k").set_value(2).run()
    at = at.text_input(key="eval_depths").set_value("4").run()
    at = at.button(key="evaluate").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    document = at.session_state["evaluation"].document
    assert document["models"][1] == str(bge) and document["top_ks"] == [2, 4]
    assert [len(points) for points in run_curves(document, ["A", "B"]).values()] == [2, 2]
    assert "B vs A" in table_runs(at)


def table_runs(at: AppTest) -> list[str]:
    return next(d.value for d in at.dataframe if "runs" in d.value.columns)["runs"].tolist()


def test_depths_that_cannot_be_evaluated_are_named(page: AppTest) -> None:
    at = page.text_input(key="eval_depths").set_value("ten").run()
    assert "not whole numbers" in at.main.error[0].value and at.button(key="evaluate").disabled
    at = at.text_input(key="eval_depths").set_value("5, 500").run()
    at = at.button(key="evaluate").click().run()
    assert not at.exception
    said = at.main.error[0].value
    assert "K 500 is deeper than the first stage" in said and "give depths up to 20" in said
    assert "evaluation" not in at.session_state
