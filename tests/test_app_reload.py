"""What a browser was doing survives a reload however the workbench was started, a bad address loses nothing, and text
the browser cannot send whole keeps the page working: Rerank and Compare through Streamlit's AppTest, on the tiny
real model. (A reload is a fresh AppTest with the page's address; `streamlit run app.py` sets no cookie, and neither
does AppTest.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.testing.v1 import AppTest

from reranker.analysis.ranking_metrics import label_metrics, metric_text
from reranker.core.browser_ids import BROWSER_PARAM, is_browser_id
from reranker.formats.documents import format_documents
from reranker.workbench.broken_text import LenientBackMsg, accept_broken_text

APP = Path(__file__).resolve().parent.parent / "app.py"
QUERY = "What is the capital of China?"
DOCUMENTS = ["Shanghai is the largest city in China.", "The capital of China is Beijing.", "北京是中国的首都。"]


@pytest.fixture
def page(opened_app, workbench_model) -> AppTest:
    return opened_app()


def reload(at: AppTest, page: str | None = None, **params: str) -> AppTest:
    """The same address opened again in a fresh session (what a reload is), with `params` added to it."""
    again = AppTest.from_file(str(APP), default_timeout=120)
    again.query_params.update({**at.query_params, **params})
    again = again.run()
    return again.switch_page(page).run() if page else again


def errors(at: AppTest) -> str:
    return " ".join(f"{e.proto.title} {e.value}" for e in at.error)


def test_a_reload_without_the_cookie_keeps_the_inputs_and_the_ranking(page):
    page.text_input(key="query").input(QUERY)
    at = page.text_area(key="documents").input("\n".join(DOCUMENTS)).run()
    who = at.query_params.get(BROWSER_PARAM)
    assert is_browser_id(who)  # no cookie: the id went into the address
    at = at.button(key="rerank").click().run()
    ranking = at.session_state["ranking"]

    again = reload(at)
    assert again.query_params[BROWSER_PARAM] == who
    assert again.text_input(key="query").value == QUERY
    assert again.text_area(key="documents").value == "\n".join(DOCUMENTS)
    assert [d.score for d in again.session_state["ranking"].ranked] == [d.score for d in ranking.ranked]
    assert "score_cache" not in again.session_state or again.session_state["score_cache"].pairs_scored == 0

    elsewhere = reload(at, "views/compare.py")  # a page switch drops the address's parameters: it is put back
    assert elsewhere.query_params[BROWSER_PARAM] == who
    for page_without_drafts in ("views/verify.py", "views/sidecar_jobs.py"):  # a reload there must keep it too
        elsewhere.query_params.clear()
        assert elsewhere.switch_page(page_without_drafts).run().query_params[BROWSER_PARAM] == who


def test_a_bad_session_link_says_not_found_and_keeps_the_typed_inputs(page):
    page.text_input(key="query").input(QUERY)
    at = page.text_area(key="documents").input("\n".join(DOCUMENTS)).run()

    bad = reload(at, session="0123456789abcdef")
    said = errors(bad)
    assert "0123456789abcdef was not found" in said and "Nothing on the page was changed" in said
    assert "/" not in said.replace("\\", "")  # no server folder in the message
    assert bad.text_input(key="query").value == QUERY
    assert bad.text_area(key="documents").value == "\n".join(DOCUMENTS)
    assert "session" not in bad.query_params

    back = reload(bad)
    assert back.text_input(key="query").value == QUERY and not back.error
    assert back.text_area(key="documents").value == "\n".join(DOCUMENTS)


def test_text_with_a_broken_character_is_read_and_said_where_it_is(page):
    """The browser sends a lone surrogate as three bytes that are not UTF-8; the server reads them as U+FFFD (the
    same length, so the message still adds up) instead of refusing every message after it."""
    message = BackMsg()
    widget = message.rerun_script.widget_states.widgets.add()
    widget.id, widget.string_value = "query", "capital \ufffd of China"
    sent = message.SerializeToString().replace("\ufffd".encode(), b"\xed\xa0\x80")  # "\ud800" as the browser sends it
    with pytest.raises(Exception, match="UTF-8"):
        BackMsg().ParseFromString(sent)
    accept_broken_text()
    from streamlit.web.server.starlette import starlette_websocket

    read = starlette_websocket.BackMsg()
    read.ParseFromString(sent)
    assert isinstance(read, LenientBackMsg)
    assert read.rerun_script.widget_states.widgets[0].string_value == "capital \ufffd of China"

    page.text_input(key="query").input("capital \ufffd of China")
    at = page.text_area(key="documents").input(f"{DOCUMENTS[0]}\nbroken \ufffd here\n{DOCUMENTS[2]}").run()
    said = " ".join(w.value for w in at.warning)
    assert "The query holds a character that could not be read" in said
    assert r"document \#2 holds a character" in said
    at = at.button(key="rerank").click().run()
    assert not at.exception and not at.error and len(at.session_state["ranking"].ranked) == 3


def test_labels_edited_in_the_box_reach_the_cards_and_metrics_without_scoring(page):
    page.text_input(key="query").input(QUERY)
    at = page.text_area(key="documents").input(format_documents(DOCUMENTS, [2, 0, 0])).run()
    at = at.button(key="rerank").click().run()
    scored = at.session_state["score_cache"].pairs_scored
    at = at.text_area(key="documents").input(format_documents(DOCUMENTS, [0, 2, 2])).run()
    ranking = at.session_state["ranking"]
    assert ranking.parsed.labels == [0, 2, 2]
    want = label_metrics([ranking.parsed.labels[d.index] for d in ranking.ranked], 10)
    assert [m.value for m in at.metric] == [metric_text(name, value) for name, value in want.items()]
    assert not any("inputs or the model changed" in w.value for w in at.warning)
    assert at.session_state["score_cache"].pairs_scored == scored


LONG = ["The Forbidden City lies in the centre of Beijing.\nIt was the palace of the emperors.\n\nIt is a museum.",
        "Shanghai is a port.\nIt is the largest city in China."]


def test_paragraphs_kept_together_as_one_document_when_asked(page):
    from reranker.workbench.document_blocks import format_blocks, parse_blocks
    from reranker.workbench.saved_sessions import session_from_json, session_json

    pasted = "\n\n".join(LONG)
    page.text_input(key="query").input(QUERY)
    at = page.text_area(key="documents").input(pasted).run()
    assert at.session_state["documents"] == pasted
    assert any("Keep paragraphs together" in c.value for c in at.caption)  # the hint: read one per line
    assert "5 documents" in " ".join(c.value for c in at.caption)
    at = at.toggle(key="documents_blocks").set_value(True).run()
    assert "3 documents" in " ".join(c.value for c in at.caption)
    at = at.button(key="rerank").click().run()
    ranking = at.session_state["ranking"]
    assert sorted(d.document for d in ranking.ranked) == sorted([*LONG[0].split("\n\n"), LONG[1]])
    assert ranking.blocks and any("\n" in d.document for d in ranking.ranked)
    again = session_from_json(session_json(ranking, pasted))
    assert again.ranking.parsed.documents == ranking.parsed.documents and again.ranking.blocks

    labelled = parse_blocks(format_blocks(["one\ntwo lines", "three"], [2, 0]))
    assert (labelled.documents, labelled.labels) == (["one\ntwo lines", "three"], [2.0, 0.0])
    assert parse_blocks("a\nb\t1\n\nc\t0").labels == [1.0, 0.0]
    assert parse_blocks("a\nb\t1\n\nc\t0").line_numbers == [1, 4]


def test_restored_settings_draw_without_streamlits_default_and_state_warning(page, monkeypatch):
    """Streamlit logs a warning with a stack trace when a widget has a default value and a Session State value (as a
    restored one is); AppTest runs without the runtime that check looks for, so this gives it one."""
    from streamlit.elements.lib import policies

    logged = []
    monkeypatch.setattr(policies.runtime, "exists", lambda: True)
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    monkeypatch.setattr(policies._LOGGER, "warning", lambda message, *args, **kw: logged.append(message % args))
    page.text_input(key="query").input(QUERY)
    page.text_area(key="documents").input("\n".join(DOCUMENTS))
    at = page.number_input(key="passage_tokens").set_value(256).run()
    again = reload(at)
    assert again.number_input(key="passage_tokens").value == 256
    reload(at, "views/compare.py")
    reload(at, "views/evaluate.py")
    assert not [m for m in logged if "default value" in m], logged
