"""The main page (app.py) driven through Streamlit's AppTest, on the tiny real model."""

import html
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from reranker import DEFAULT_INSTRUCTION
from reranker.ranking_metrics import label_metrics
from reranker.workbench import widgets
from reranker.workbench.presets import INSTRUCTION_PRESETS, load_sample_sets

APP = Path(__file__).resolve().parent.parent / "app.py"
QUERY = "What is the capital of China?"
DOCUMENTS = ["Shanghai is the largest city in China.", "<img src=x onerror=alert(1)>",
             "The capital of China is Beijing.", "北京是中国的首都。", "Gravity pulls things down."]


@pytest.fixture
def page(tiny_model_dir) -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=120).run()


def rerank(at: AppTest, query: str, documents: list[str] | str) -> AppTest:
    at.text_input(key="query").input(query)
    at.text_area(key="documents").input(documents if isinstance(documents, str) else "\n".join(documents))
    return at.button(key="rerank").click().run()


def cards(at: AppTest) -> str:
    return next(h.value for h in at.html if "rank-card" in h.value)


def card_texts(at: AppTest) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<div class="doc-text">(.*?)</div>', cards(at))]


def test_sidebar_says_the_engine_is_ready(page, tiny_model_dir):
    assert not page.exception and not page.error
    ready = page.sidebar.success[0].value
    assert "Engine ready" in ready and "cpu" in ready and "float32" in ready and "loaded in" in ready
    assert page.sidebar.text_input(key="model_folder").value == str(tiny_model_dir)
    assert page.info[0].value.startswith("Type a query")


def test_rerank_orders_cards_and_table_by_the_engines_scores(page, reranker):
    at = rerank(page, QUERY, DOCUMENTS)
    assert not at.exception and not at.error
    expected = reranker.rank(QUERY, DOCUMENTS)
    assert card_texts(at) == [d.document for d in expected]
    table = at.dataframe[0].value
    assert list(table.columns) == ["rank", "input #", "score", "log-odds", "tokens", "truncated", "text"]
    assert table["text"].tolist() == [d.document for d in expected]
    assert table["input #"].tolist() == [d.index + 1 for d in expected]
    assert table["score"].tolist() == pytest.approx([d.score for d in expected], abs=1e-5)
    assert table["tokens"].tolist() == [d.tokens for d in expected]


def test_user_html_shows_as_text_and_only_rank_one_is_highlighted(page):
    at = rerank(page, QUERY, DOCUMENTS)
    markup = cards(at)
    assert "<img" not in markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup
    assert markup.startswith('<div class="rank-card top" data-rank="1">')
    assert markup.count("rank-card top") == 1


def test_view_options_never_score_again(page):
    at = rerank(page, QUERY, DOCUMENTS)
    cache, ranking = at.session_state["score_cache"], at.session_state["ranking"]
    assert cache.engine_calls == 1 and cache.pairs_scored == len(DOCUMENTS)

    at.number_input(key="top_k").set_value(2).run()
    assert len(card_texts(at)) == 2 and len(at.dataframe[0].value) == 2
    at.radio(key="score_mode").set_value("Log-odds").run()
    assert f"{ranking.ranked[0].logit:+.3f}" in cards(at)
    at.session_state["result_tab"] = "Score decay"
    at.run()
    at.checkbox(key="threshold_on").check().run()
    at.number_input(key="threshold_Log-odds").set_value(0.25).run()
    assert not at.exception
    assert at.session_state["ranking"] is ranking
    assert cache.engine_calls == 1


def test_adding_a_document_scores_only_that_one(page, reranker):
    at = rerank(page, QUERY, DOCUMENTS)
    cache = at.session_state["score_cache"]
    at = rerank(at, QUERY, [*DOCUMENTS, "Beijing hosted the 2008 Olympics."])
    assert cache.engine_calls == 2 and cache.pairs_scored == len(DOCUMENTS) + 1
    assert card_texts(at) == [d.document for d in reranker.rank(QUERY, [*DOCUMENTS,
                                                                         "Beijing hosted the 2008 Olympics."])]


def test_instruction_presets_and_custom_text_reach_the_engine(page, reranker):
    page.selectbox(key="instruction_preset").set_value("Code search").run()
    at = rerank(page, QUERY, DOCUMENTS)
    assert at.session_state["ranking"].instruction == INSTRUCTION_PRESETS["Code search"]
    assert card_texts(at) == [d.document for d in reranker.rank(QUERY, DOCUMENTS, INSTRUCTION_PRESETS["Code search"])]

    at.selectbox(key="instruction_preset").set_value("Custom").run()
    at.text_area(key="instruction_text").input("Prefer documents in Chinese").run()
    at.button(key="rerank").click().run()
    expected = reranker.rank(QUERY, DOCUMENTS, "Prefer documents in Chinese")
    assert card_texts(at) == [d.document for d in expected]

    at.text_area(key="instruction_text").input("   ").run()
    at.button(key="rerank").click().run()
    assert at.session_state["ranking"].instruction == ""
    assert card_texts(at) == [d.document for d in reranker.rank(QUERY, DOCUMENTS, DEFAULT_INSTRUCTION)]


def test_sample_with_labels_fills_the_inputs_and_shows_metrics(page, reranker):
    sample = load_sample_sets()[-1]  # a Chinese one
    page.button(key=f"sample_documents_{sample.name}").click().run()
    assert page.text_input(key="query").value == sample.query
    assert page.selectbox(key="instruction_preset").value == sample.preset
    at = page.button(key="rerank").click().run()
    expected = reranker.rank(sample.query, sample.documents, INSTRUCTION_PRESETS[sample.preset])
    assert card_texts(at) == [d.document for d in expected]
    metrics = {m.label: m.value for m in at.metric}
    wanted = label_metrics([sample.labels[d.index] for d in expected], 10)
    assert metrics == {name: f"{value:.3f}" for name, value in wanted.items()}
    assert "label" in at.dataframe[0].value.columns


def test_blank_lines_dropped_and_duplicates_flagged(page):
    at = rerank(page, QUERY, "alpha\n\n  \nbeta\nalpha\n")
    assert "3 documents" in [c.value for c in at.caption]
    assert any("line 5 repeats line 1" in w.value.replace("\\", "") for w in at.warning)
    assert at.session_state["score_cache"].pairs_scored == 2
    assert "duplicate of input #1" in cards(at)


def test_missing_inputs_get_messages_not_scores(page):
    at = rerank(page, "", DOCUMENTS)
    assert [e.value for e in at.error] == ["Type a query first."]
    at = rerank(at, QUERY, "\n \n")
    assert [e.value for e in at.error] == ["Paste at least one document, one per line."]
    assert "score_cache" not in at.session_state or at.session_state["score_cache"].engine_calls == 0


def test_a_model_that_cannot_load_shows_the_engines_message(tiny_model_dir, tmp_path, monkeypatch):
    missing = tmp_path / "no-such-model"
    monkeypatch.setenv("RERANKER_MODEL", str(missing))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception
    (panel,) = at.main.error
    message = panel.value.replace("\\", "")
    assert str(missing) in message and "does not exist" in message and "Fix:" in message
    assert "Traceback" not in message
    assert at.sidebar.error[0].value == "Engine not loaded"
    assert at.button(key="rerank").disabled


def test_plain_markdown_shows_text_as_typed():
    assert widgets.plain_markdown("**bold** _x_ [a](b) $1 :red[c] <b>") == (
        r"\*\*bold\*\* \_x\_ \[a\]\(b\) \$1 \:red\[c\] \<b\>")


def test_a_failed_load_is_remembered_until_try_again(tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    missing = tmp_path / "arrives-later"
    monkeypatch.setenv("RERANKER_MODEL", str(missing))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert at.sidebar.error[0].value == "Engine not loaded"
    shutil.copytree(tiny_model_dir, missing)
    # a new page run (AppTest draws the frame on a script's first run only) tells the failure again at once
    again = AppTest.from_file(str(APP), default_timeout=120).run()
    assert again.sidebar.error[0].value == "Engine not loaded" and again.button(key="rerank").disabled
    again.button(key="backend_retry").click().run()
    fixed = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not fixed.sidebar.error and "Engine ready" in fixed.sidebar.success[0].value
    assert not fixed.button(key="rerank").disabled
