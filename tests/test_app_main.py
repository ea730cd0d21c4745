"""The main page (app.py) driven through Streamlit's AppTest, on the tiny real model."""

import html
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from reranker import DEFAULT_INSTRUCTION, explain
from reranker.analysis.ranking_metrics import label_metrics, metric_text
from reranker.workbench import widgets
from reranker.workbench.charts import cliff_caption
from reranker.workbench.presets import INSTRUCTION_PRESETS, load_sample_sets

APP = Path(__file__).resolve().parent.parent / "app.py"
QUERY = "What is the capital of China?"
DOCUMENTS = ["Shanghai is the largest city in China.", "<img src=x onerror=alert(1)>",
             "The capital of China is Beijing.", "北京是中国的首都。", "Gravity pulls things down."]


@pytest.fixture
def page(opened_app, workbench_model) -> AppTest:
    return opened_app()


def rerank(at: AppTest, query: str, documents: list[str] | str) -> AppTest:
    at.text_input(key="query").input(query)
    at.text_area(key="documents").input(documents if isinstance(documents, str) else "\n".join(documents))
    return at.button(key="rerank").click().run()


def cards(at: AppTest) -> str:
    return "".join(h.value for h in at.html if "rank-card" in h.value)


def card_texts(at: AppTest) -> list[str]:
    """The documents as the cards show them (query words are marked: the marks left out)."""
    return [html.unescape(re.sub(r"</?mark>", "", t)) for t in re.findall(r'<div class="doc-text">(.*?)</div>',
                                                                          cards(at))]


def test_sidebar_says_the_engine_is_ready(page, tiny_model_dir):
    assert not page.exception and not page.error
    ready = page.sidebar.success[0].value
    assert "Engine ready" in ready and "cpu" in ready and "float32" in ready and "loaded in" in ready
    assert page.sidebar.text_input(key="model_folder").value == str(tiny_model_dir)
    # also in the page, where a phone (its sidebar folded away) shows it
    assert "in this process on cpu" in page.main.caption[0].value
    assert page.info[0].value.startswith("Type a query")


def test_int8_picked_for_the_workbench_scores_in_int8_and_says_so(opened_app, workbench_model, monkeypatch):
    from reranker import Qwen3Reranker

    monkeypatch.setenv("RERANKER_DTYPE", "int8")  # as ./start.sh started in int8: the sidebar's Precision follows
    at = opened_app()
    assert not at.exception and at.sidebar.radio(key="model_precision").value == "int8"
    assert "dtype: int8" in at.sidebar.success[0].value and r"\(int8\) ·" in at.main.caption[0].value
    at = rerank(at, QUERY, DOCUMENTS)
    ranking = at.session_state["ranking"]
    assert ranking.model == f"{workbench_model} (int8)"
    expected = Qwen3Reranker(str(workbench_model), device="cpu", dtype="int8").score(QUERY, ranking.parsed.documents)
    assert max(abs(d.score - expected[d.index]) for d in ranking.ranked) < 1e-5


def test_rerank_orders_cards_and_table_by_the_engines_scores(page, reranker):
    at = rerank(page, QUERY, DOCUMENTS)
    assert not at.exception and not at.error
    expected = reranker.rank(QUERY, DOCUMENTS)
    assert card_texts(at) == [d.document for d in expected]
    table = at.dataframe[0].value
    assert list(table.columns) == ["rank", "score", "text", "log-odds", "input #", "tokens"]
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
    assert cache.pairs_scored == len(DOCUMENTS)

    at.number_input(key="top_k").set_value(2).run()
    # top k limits the cards only: the table keeps every document, so sorting finds the worst too
    assert len(card_texts(at)) == 2 and len(at.dataframe[0].value) == len(DOCUMENTS)
    at.radio(key="score_mode").set_value("Log-odds").run()
    assert f"{ranking.ranked[0].logit:+.3f}" in cards(at)
    at.session_state["result_tab"] = "Score decay"
    at.run()
    at.checkbox(key="threshold_on").check().run()
    at.number_input(key="threshold_Log-odds").set_value(0.25).run()
    assert not at.exception
    assert at.session_state["ranking"] is ranking
    assert cache.pairs_scored == len(DOCUMENTS)


def test_the_decay_tab_tells_the_largest_drop_truly(page):
    at = rerank(page, QUERY, DOCUMENTS)
    at.session_state["result_tab"] = "Score decay"
    at.run()
    values = [d.score for d in at.session_state["ranking"].ranked]
    assert cliff_caption(values) in [c.value for c in at.caption]


def test_adding_a_document_scores_only_that_one(page, reranker):
    at = rerank(page, QUERY, DOCUMENTS)
    cache = at.session_state["score_cache"]
    at = rerank(at, QUERY, [*DOCUMENTS, "Beijing hosted the 2008 Olympics."])
    assert cache.pairs_scored == len(DOCUMENTS) + 1
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
    assert metrics == {name: metric_text(name, value) for name, value in wanted.items()}
    assert metrics["Hit@1"] in ("yes", "no")
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
    assert "score_cache" not in at.session_state or at.session_state["score_cache"].backend_calls == 0


def test_a_model_that_cannot_load_shows_the_engines_message(opened_app, tiny_model_dir, tmp_path, monkeypatch):
    missing = tmp_path / "no-such-model"
    monkeypatch.setenv("RERANKER_MODEL", str(missing))
    at = opened_app()
    assert not at.exception
    (panel,) = at.main.error
    message = panel.value.replace("\\", "")
    assert str(missing) in message and "does not exist" in message and "Fix:" in message
    assert "the workbench's Model field in the sidebar" in message
    assert "Traceback" not in message
    assert at.sidebar.error[0].value == "Engine not loaded"
    assert at.button(key="rerank").disabled


def test_plain_markdown_shows_text_as_typed():
    assert widgets.plain_markdown("**bold** _x_ [a](b) $1 :red[c] <b>") == (
        r"\*\*bold\*\* \_x\_ \[a\]\(b\) \$1 \:red\[c\] \<b\>")


def test_a_failed_load_is_remembered_until_try_again(opened_app, tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    missing = tmp_path / "arrives-later"
    monkeypatch.setenv("RERANKER_MODEL", str(missing))
    at = opened_app()
    assert at.sidebar.error[0].value == "Engine not loaded"
    shutil.copytree(tiny_model_dir, missing)
    # a new page run (AppTest draws the frame on a script's first run only) tells the failure again at once
    again = opened_app()
    assert again.sidebar.error[0].value == "Engine not loaded" and again.button(key="rerank").disabled
    again.button(key="backend_retry").click().run()
    fixed = opened_app()
    assert not fixed.sidebar.error and "Engine ready" in fixed.sidebar.success[0].value
    assert not fixed.button(key="rerank").disabled


def test_why_shows_each_sentence_of_a_card_with_the_engines_deltas(page, reranker):
    document = "Beijing is the capital of China. It is in the north! <b>Pandas</b> eat bamboo."
    at = rerank(page, QUERY, [document, "Gravity pulls things down."])
    assert "<mark>capital</mark>" in cards(at) and "<mark>China</mark>" in cards(at)  # query words marked
    index = at.session_state["ranking"].parsed.documents.index(document)
    at = at.button(key=f"why_{index}").click().run()
    assert not at.exception and not at.error
    view = next(h.value for h in at.html if 'class="why"' in h.value)
    spans = explain(reranker, QUERY, document)
    assert [s.text for s in spans] == ["Beijing is the capital of China.", "It is in the north!",
                                       "<b>Pandas</b> eat bamboo."]
    for span in spans:
        assert f"{span.delta:+.2f}</sup>" in view
    assert "<b>Pandas" not in view and "&lt;b&gt;Pandas" in view  # hostile text stays inert
    assert at.button(key=f"why_{index}").label == "Hide why"
    scored = at.session_state["score_cache"].pairs_scored
    at.radio(key="score_mode").set_value("Log-odds").run()  # re-rendered from the cache, not scored again
    assert at.session_state["score_cache"].pairs_scored == scored
    at = at.button(key=f"why_{index}").click().run()
    assert not any('class="why"' in h.value for h in at.html)


def test_the_threshold_filters_cards_table_and_downloads(page):
    at = rerank(page, QUERY, DOCUMENTS)
    ranked = at.session_state["ranking"].ranked
    cut = (ranked[1].score + ranked[2].score) / 2  # two documents above it
    at.number_input(key="threshold_Probability").set_value(cut).run()
    at.checkbox(key="threshold_filter").check().run()
    assert len(card_texts(at)) == 2 and len(at.dataframe[0].value) == 2
    assert f"Only the 2 of {len(DOCUMENTS)} documents with probability ≥ {cut:g}." in [c.value for c in at.caption]
    assert "Downloads hold the 2 documents of the table" in " ".join(c.value for c in at.caption)
    at.radio(key="score_mode").set_value("Log-odds").run()  # the threshold follows into log-odds: the same two
    assert len(card_texts(at)) == 2 and at.number_input(key="threshold_Log-odds").value < 0
    at.checkbox(key="threshold_filter").uncheck().run()
    assert len(at.dataframe[0].value) == len(DOCUMENTS)


def test_a_workbench_open_to_the_network_asks_for_its_key_first(workbench_model, monkeypatch):
    monkeypatch.setenv("RERANKER_HOST", "0.0.0.0")
    monkeypatch.setenv("RERANKER_API_KEY", "the-key")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception and "query" not in [t.key for t in at.text_input]  # nothing of the page yet
    assert "asks for its key" in at.info[0].value
    at = at.text_input(key="unlock_key").input("not-the-key").run()
    assert "not this workbench's key" in at.error[0].value and "query" not in [t.key for t in at.text_input]
    at = at.text_input(key="unlock_key").input("the-key").run()
    assert not at.exception and "query" in [t.key for t in at.text_input]
    monkeypatch.setenv("RERANKER_HOST", "127.0.0.1")  # on loopback the pages stay open, key or not
    assert "query" in [t.key for t in AppTest.from_file(str(APP), default_timeout=60).run().text_input]


LONG = " ".join(f"Sentence {n} says something about the weather in a far away town." for n in range(30)) + \
    " The capital of China is Beijing, its seat of government."


def test_long_documents_read_as_passages_mark_their_best_one(page, reranker):
    from reranker import Query

    at = page.number_input(key="passage_tokens").set_value(128).run()
    at = rerank(at, QUERY, ["Gravity pulls things down.", LONG])
    assert not at.exception and not at.error
    [judged] = reranker.judge_many([Query(QUERY, ["Gravity pulls things down.", LONG], passage_tokens=128)])
    best = judged[1].best_passage()
    html_cards = cards(at)
    assert 'class="passage-strip"' in html_cards and 'id="passage-1"' in html_cards
    assert f"best passage: characters {best.start:,}–{best.end:,} of {len(LONG):,}" in html_cards
    assert html_cards.count('class="band') == len(judged[1].passages)
    table = at.dataframe[0].value
    assert "best passage" in table.columns
    ranking = at.session_state["ranking"]
    assert ranking.passage_tokens == 128
    assert [d.score for d in sorted(ranking.ranked, key=lambda d: d.index)] == pytest.approx(
        [j.score for j in judged], abs=1e-5)
    at = at.number_input(key="passage_tokens").set_value(0).run()
    assert any("changed since this ranking" in w.value for w in at.warning)  # the same yellow notice as Compare


def test_labels_marked_on_the_cards_drive_the_metrics_and_go_to_evaluate(page, reranker, tmp_path):
    from reranker.analysis.evaluation import load_evaluation
    from reranker.analysis.ranking_metrics import label_metrics
    from reranker.workbench.evaluation_view import save_uploads

    at = rerank(page, QUERY, DOCUMENTS)
    assert not at.metric
    ranking = at.session_state["ranking"]
    beijing = DOCUMENTS.index("The capital of China is Beijing.")
    at = at.button_group(key=f"grade_{id(ranking)}_{beijing}").set_value(2).run()
    ranking = at.session_state["ranking"]
    at = at.button_group(key=f"grade_{id(ranking)}_{DOCUMENTS.index('北京是中国的首都。')}").set_value(1).run()
    assert not at.exception
    labels = [0.0] * len(DOCUMENTS)
    labels[beijing], labels[DOCUMENTS.index("北京是中国的首都。")] = 2.0, 1.0
    assert at.session_state["ranking"].parsed.labels == labels
    assert at.text_area(key="documents").value.splitlines() == [f"{d}\t{g:g}" for d, g in zip(DOCUMENTS, labels)]
    want = label_metrics([labels[d.index] for d in reranker.rank(QUERY, DOCUMENTS)], 10)
    assert {m.label: m.value for m in at.metric} == {name: metric_text(name, v) for name, v in want.items()}
    assert not at.warning  # labels change no input the ranking answers: it stays current

    # the labels as a BEIR folder with the given order as the first stage, as the Evaluate page reads it
    from reranker.formats.retrieval import labelled_dataset_zip

    save_uploads([("labelled.zip", labelled_dataset_zip(QUERY, DOCUMENTS, labels))], tmp_path)
    dataset, first, texts = load_evaluation(tmp_path, tmp_path / "run.trec", top_k=10)
    assert dataset.queries == {"q1": QUERY} and dataset.qrels == {"q1": {f"d{n + 1}": round(g)
                                                                         for n, g in enumerate(labels)}}
    assert [docid for docid, _ in first["q1"]] == [f"d{n + 1}" for n in range(len(DOCUMENTS))]
    assert [texts[f"d{n + 1}"] for n in range(len(DOCUMENTS))] == DOCUMENTS
