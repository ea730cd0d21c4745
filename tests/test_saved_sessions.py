"""Saving a Rerank result and opening it again (by its address or as a file), through AppTest on the tiny model."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from reranker.formats.documents import format_documents
from reranker.workbench.saved_sessions import SessionError, open_session, session_from_json, session_json

APP = Path(__file__).resolve().parent.parent / "app.py"
QUERY = "What is the capital of <b>China</b>?"
DOCUMENTS = ["Beijing is the capital.\t2", "<img src=x onerror=alert(1)>\t0", "Shanghai is large.\t1"]


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RERANKER_DATA_DIR", str(tmp_path))
    return tmp_path


def ranked_page(opened_app) -> AppTest:
    at = opened_app()
    at.text_input(key="query").input(QUERY)
    at.text_area(key="documents").input("\n".join(DOCUMENTS))
    return at.button(key="rerank").click().run()


def cards(at: AppTest) -> str:
    return "".join(h.value for h in at.html if "rank-card" in h.value)


def test_a_saved_session_opens_from_its_address_without_scoring(workbench_model, opened_app, data_dir):
    at = ranked_page(opened_app)
    ranking = at.session_state["ranking"]
    at.context["url"] = "http://gpu-box:8501/"  # the address the browser shows
    at = at.button(key="session_save").click().run()
    assert not at.exception and not at.error
    session_id = at.query_params["session"]
    assert (data_dir / "sessions" / f"{session_id}.json").exists()
    assert any(f"Saved as session {session_id}" in c.value for c in at.caption)
    assert [c.value for c in at.code] == [f"http://gpu-box:8501/?session={session_id}"]  # with a copy button

    again = AppTest.from_file(str(APP), default_timeout=120)
    again.query_params["session"] = session_id
    again.run()
    assert not again.exception and not again.error
    restored = again.session_state["ranking"]
    assert [(d.index, d.score, d.logit, d.tokens) for d in restored.ranked] == [
        (d.index, d.score, d.logit, d.tokens) for d in ranking.ranked]
    assert "score_cache" not in again.session_state or again.session_state["score_cache"].pairs_scored == 0
    assert again.text_input(key="query").value == QUERY
    assert again.text_area(key="documents").value == "\n".join(DOCUMENTS)
    assert any("not scored again" in i.value for i in again.info)
    assert "&lt;img src=x onerror=alert(1)&gt;" in cards(again) and "<img" not in cards(again)
    assert [m.value for m in again.metric]  # the labels came back too


def test_a_session_file_opens_on_another_workbench(workbench_model, opened_app, data_dir):
    at = ranked_page(opened_app)
    ranking = at.session_state["ranking"]
    assert "Download session JSON" in [b.label for b in at.get("download_button")]
    data = session_json(ranking, format_documents(ranking.parsed.documents, ranking.parsed.labels)).encode()
    fresh = AppTest.from_file(str(APP), default_timeout=120).run()
    fresh.file_uploader(key="session_upload").set_value(("copy.json", data, "application/json")).run()
    assert not fresh.exception
    assert fresh.session_state["ranking"].ranked == ranking.ranked
    assert fresh.text_input(key="query").value == QUERY
    assert "score_cache" not in fresh.session_state or fresh.session_state["score_cache"].pairs_scored == 0

    fresh.file_uploader(key="session_upload").set_value(("notes.json", b'{"a": 1}', "application/json")).run()
    assert any("not a saved session" in e.value.replace("\\", "") for e in fresh.error)
    assert fresh.session_state["ranking"].ranked == ranking.ranked  # a bad file loses nothing


def test_what_is_not_a_session_says_so(workbench_model, data_dir):
    with pytest.raises(SessionError, match="not a session id"):
        open_session("../../etc/passwd")
    with pytest.raises(SessionError, match="session 0123456789abcdef was not found") as refused:
        open_session("0123456789abcdef")
    assert "/" not in str(refused.value)  # no folder of the server
    with pytest.raises(SessionError, match="not JSON"):
        session_from_json(b"\x89PNG")
    with pytest.raises(SessionError, match="not a saved session"):
        session_from_json(json.dumps({"query": "q"}))
    broken = {"format": "qwen-ranker-pro session", "version": 1, "model": "m", "query": "q", "instruction": "",
              "documents_text": "a\nb", "judgements": [{"score": 0.5, "logit": 0.0}]}
    with pytest.raises(SessionError, match="1 judgement for 2 documents"):
        session_from_json(json.dumps(broken))

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["session"] = "0123456789abcdef"
    at.run()
    assert not at.exception
    assert "session 0123456789abcdef was not found" in at.error[0].value.replace("\\", "")
