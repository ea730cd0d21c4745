"""The CSV batch page driven through Streamlit's AppTest, on the tiny real model."""

import io
import json
import socket
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from conftest import SCORE_TOLERANCE
from streamlit.testing.v1 import AppTest

from reranker import DEFAULT_INSTRUCTION
from reranker.analysis.ranking_metrics import label_metrics
from reranker.formats.exports import EXPORT_COLUMNS
from reranker.formats.tables import MAX_UPLOAD_BYTES
from reranker.workbench.presets import INSTRUCTION_PRESETS

ROOT = Path(__file__).resolve().parent.parent
CAPITAL = "中国的首都是哪里？"
SLEEP = "如何提高睡眠质量？"
TSV = (
    "查询\t文档\t标签\n"
    f"{CAPITAL}\t北京是中国的首都。\t2\n"
    f"{SLEEP}\t保持规律的作息时间。\t2\n"
    f"{CAPITAL}\t上海是中国最大的城市。\t0\n"
    f"{CAPITAL}\t=1+1\t0\n"
    f"{SLEEP}\t红烧肉的做法。\t0\n"
    f"{CAPITAL}\t南京曾是首都。\t1\n"
)


@pytest.fixture
def page(opened_app, workbench_model) -> AppTest:
    at = opened_app()
    return at.switch_page("views/csv_batches.py").run()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    return at.file_uploader(key="batch_file").set_value((name, data, "text/csv")).run()


def results_table(at: AppTest):
    return next(d.value for d in at.dataframe if "rank" in d.value.columns)


def test_gbk_tsv_is_mapped_scored_grouped_and_measured(page, reranker):
    at = upload(page, "pairs.tsv", TSV.encode("gbk"))
    assert not at.exception and not at.error
    assert [at.selectbox(key=k).value for k in ("map_query", "map_document", "map_label", "map_instruction")] == [
        "查询", "文档", "标签", "(none)"]
    assert "6 pairs · 2 queries · 6 labelled" in " ".join(c.value for c in at.caption)
    at = at.button(key="batch_run").click().run()
    assert not at.exception and not at.error

    results = results_table(at)
    assert results["query"].tolist() == [CAPITAL] * 4 + [SLEEP] * 2
    capital_docs = ["北京是中国的首都。", "上海是中国最大的城市。", "=1+1", "南京曾是首都。"]
    expected = reranker.rank(CAPITAL, capital_docs, DEFAULT_INSTRUCTION)
    assert results["document"].tolist()[:4] == [d.document for d in expected]
    assert results["score"].tolist()[:4] == pytest.approx([d.score for d in expected], abs=1e-5)
    assert results["rank"].tolist() == [1, 2, 3, 4, 1, 2]

    per_query = next(d.value for d in at.dataframe if "MRR" in d.value.columns)
    labels = {"北京是中国的首都。": 2, "上海是中国最大的城市。": 0, "=1+1": 0, "南京曾是首都。": 1}
    want = label_metrics([labels[d.document] for d in expected], 10)
    assert per_query.iloc[0][["NDCG@10", "MRR", "Hit@1"]].tolist() == pytest.approx(list(want.values()))
    assert len(at.metric) == 3 and at.metric[0].label == "NDCG@10 (mean of 2 queries)"
    assert {b.label for b in at.get("download_button")} >= {"Download CSV", "Download JSON"}


def test_the_last_batch_comes_back_after_a_reload_without_its_file(page):
    at = upload(page, "pairs.tsv", TSV.encode("gbk"))
    at = at.number_input(key="batch_k").set_value(3).run()
    at = at.button(key="batch_run").click().run()
    scored = results_table(at)
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    again.query_params.update(at.query_params)
    again = again.run().switch_page("views/csv_batches.py").run()  # a reload: a fresh session, no file
    assert not again.exception and not again.error
    assert any("Your last batch, pairs.tsv, as it was scored" in c.value.replace("\\", "") for c in again.caption)
    back = results_table(again)
    assert back["document"].tolist() == scored["document"].tolist()
    assert back["score"].tolist() == pytest.approx(scored["score"].tolist())
    assert {"Download CSV", "Download JSON"} <= {b.label for b in again.get("download_button")}
    assert again.session_state["batch_k"] == 3 and len(again.metric) == 3


def test_view_changes_after_a_run_do_not_score_again(page):
    at = upload(page, "pairs.tsv", TSV.encode("gbk")).button(key="batch_run").click().run()
    batch, calls = at.session_state["batch"], at.session_state["score_cache"].backend_calls
    at.selectbox(key="batch_filter").set_value(SLEEP).run()
    assert results_table(at)["query"].tolist() == [SLEEP, SLEEP]
    at.number_input(key="batch_k").set_value(1).run()
    assert "NDCG@1" in next(d.value for d in at.dataframe if "MRR" in d.value.columns).columns
    assert at.session_state["batch"] is batch and at.session_state["score_cache"].backend_calls == calls


def test_utf8_bom_csv_and_a_new_instruction_for_rows(page, reranker):
    data = "\ufeffquestion,passage\nWhat is the capital?,Beijing.\nWhat is the capital?,Paris.\n".encode()
    at = upload(page, "pairs.csv", data)
    at.selectbox(key="batch_instruction_preset").set_value("Legal clause").run()
    at = at.button(key="batch_run").click().run()
    results = results_table(at)
    expected = reranker.rank("What is the capital?", ["Beijing.", "Paris."],
                             at.session_state["batch"]["results"]["instruction"].iloc[0])
    assert results["document"].tolist() == [d.document for d in expected]
    # the instruction is shown once above the table, not on every row
    assert "instruction" not in results.columns
    assert at.session_state["batch"]["results"]["instruction"].iloc[0].startswith("Given a legal question")
    assert any(m.value.startswith("**Instruction:** Given a legal question") for m in at.markdown)
    assert "label" not in results.columns and not at.metric


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty.csv", b"", "empty"),
    ("book.csv", b"PK\x03\x04\x00\x00binary", "not a CSV"),
    ("huge.csv", b"query,document\n" + b"x" * MAX_UPLOAD_BYTES, "the limit is"),
    ("one.csv", b"just one column\nrow\n", "a query column and a document column"),
])
def test_bad_files_get_a_clear_message(page, name, data, message):
    at = upload(page, name, data)
    assert not at.exception
    (error,) = at.main.error
    assert message in error.value.replace("\\", "")
    assert "batch_run" not in [b.key for b in at.button]


def test_headers_it_cannot_place_are_said_to_be_guessed(page):
    at = upload(page, "odd.csv", b"foo,bar,baz\nq,d,x\n")
    (warning,) = at.warning
    text = warning.value.replace("\\", "")
    assert "guessed by position: query = foo, document = bar" in text
    assert not upload(page, "fine.csv", b"query,document\nq,d\n").warning


def test_a_malformed_csv_names_its_line(page):
    at = upload(page, "broken.csv", b'query,document\nq,fine\nq,"quoted"then more\n')
    (error,) = at.main.error
    assert "line 3" in error.value and "double quotes" in error.value.replace("\\", "")


def test_a_ragged_file_can_go_on_without_its_bad_rows_and_says_which_were_left_out(page, reranker):
    data = (b"query,document\nWhat is the capital?,Beijing.\nWhat is the capital?,Paris, France\n"
            b"What is the capital?,Rome.\nWhat is the capital?,one,two,three\n")
    at = upload(page, "ragged.csv", data)
    (error,) = at.main.error
    assert "line 3" in error.value and "batch_run" not in [b.key for b in at.button]
    at = at.checkbox(key="batch_skip_bad").check().run()
    assert not at.exception
    (warning,) = [w for w in at.warning if "left out" in w.value]
    assert warning.value.replace("\\", "").startswith("2 left out (line 3: 3 fields") and "line 5" in warning.value
    at = at.button(key="batch_run").click().run()
    results = at.session_state["batch"]["results"]
    assert sorted(results["document"]) == ["Beijing.", "Rome."]
    assert results.sort_values("document")["score"].tolist() == pytest.approx(
        reranker.score("What is the capital?", ["Beijing.", "Rome."]), abs=1e-5)


def test_a_stray_quote_is_named_by_the_line_it_opens_on_and_only_that_row_is_left_out(page):
    data = (b"query,document\nq,one\nq,two\nq,three\nq,\"four has a stray quote\nq,five\nq,six\n")
    at = upload(page, "stray.csv", data)
    (error,) = at.main.error
    said = error.value.replace("\\", "")
    assert "line 5 (a quote opened there is never closed)" in said and "line 8" not in said
    at = at.checkbox(key="batch_skip_bad").check().run()
    (warning,) = [w for w in at.warning if "left out" in w.value]
    assert warning.value.replace("\\", "").startswith("1 left out (line 5 (a quote opened there is never closed)")
    assert "5 rows are used" in warning.value
    assert "5 pairs · 1 query · first 5 rows" in " ".join(c.value for c in at.caption)


def test_one_row_is_counted_in_the_singular(page):
    at = upload(page, "one.csv", b"query,document,label\nq,one,1\nlonely\n")
    assert "line 3 has 1 field but the header has 3" in at.main.error[0].value
    at = at.checkbox(key="batch_skip_bad").check().run()
    said = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "1 row is used" in said and "line 3: 1 field where the header has 3" in said
    assert "1 pair · 1 query · 1 labelled · the only row" in " ".join(c.value for c in at.caption)
    assert at.button(key="batch_run").label == "Score 1 pair"


def test_the_upload_limit_is_the_same_everywhere(page):
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] * 2**20 == MAX_UPLOAD_BYTES  # what the uploader itself says
    assert any(f"up to {MAX_UPLOAD_BYTES // 2**20} MB" in c.value for c in page.caption)


def test_a_big_file_suggests_a_background_job(page):
    rows = "".join(f"question {n % 7},passage {n}\n" for n in range(1_200))
    at = upload(page, "big.csv", f"query,document\n{rows}".encode())
    (info,) = [i.value for i in at.info]
    assert "1,200 pairs keep this page busy" in info and "./start.sh" in info
    assert not at.button(key="batch_run").disabled  # scoring in the page stays possible, and can be cancelled


def test_a_label_that_is_not_a_number_names_the_row_and_can_be_left_out(page):
    at = upload(page, "pairs.csv", b"query,document,label\nq,d1,1\nq,d2,high\n")
    (error,) = at.main.error
    assert "row 2" in error.value and "high" in error.value and "not a number" in error.value
    at = at.selectbox(key="map_label").set_value("(none)").run()
    assert not at.main.error
    assert not at.button(key="batch_run").disabled


def on_server(opened_app, monkeypatch, url: str, key: str | None, old_names: bool = False) -> AppTest:
    """The CSV page of a workbench whose backend is the server at `url` (as ./start.sh sets it up)."""
    for name in ("RERANKER_SERVER", "RERANKER_SERVER_KEY", "RERANKER_API_URL", "RERANKER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RERANKER_API_URL" if old_names else "RERANKER_SERVER", url)
    if key is not None:
        monkeypatch.setenv("RERANKER_API_KEY" if old_names else "RERANKER_SERVER_KEY", key)
    at = opened_app()
    ready = at.sidebar.success[0].value.replace("\\", "")
    assert "Server ready" in ready and f"server {url.rstrip('/')}" in ready
    return at.switch_page("views/csv_batches.py").run()


def test_no_sidecar_section_when_the_model_runs_in_this_process(page, monkeypatch):
    at = upload(page, "pairs.tsv", TSV.encode("gbk"))
    assert "sidecar_send" not in [b.key for b in at.button]


def test_an_unreachable_server_is_named_and_nothing_can_be_scored(opened_app, monkeypatch):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RERANKER_SERVER", f"http://127.0.0.1:{port}/")
    at = opened_app()
    assert not at.exception
    assert at.sidebar.error[0].value == "Server not usable"
    (error,) = at.main.error
    message = error.value.replace("\\", "")
    assert f"127.0.0.1:{port}" in message and "Fix:" in message
    at = upload(at.switch_page("views/csv_batches.py").run(), "pairs.tsv", TSV.encode("gbk"))
    assert not at.exception
    assert at.button(key="batch_run").disabled and "sidecar_send" not in [b.key for b in at.button]


def test_scored_on_the_server_like_in_this_process(opened_app, keyed_sidecar, reranker, monkeypatch):
    at = on_server(opened_app, monkeypatch, keyed_sidecar.url, keyed_sidecar.env["RERANKER_API_KEY"])
    at = upload(at, "pairs.tsv", TSV.encode("gbk")).button(key="batch_run").click().run()
    assert not at.exception and not at.main.error
    table = results_table(at)
    capital = table[table["query"] == CAPITAL]
    want = {d.document: d for d in reranker.rank(CAPITAL, capital["document"].tolist())}
    assert capital["score"].tolist() == pytest.approx([want[d].score for d in capital["document"]], abs=SCORE_TOLERANCE)


def test_upload_handed_to_a_live_sidecar_is_followed_on_the_jobs_page(opened_app, keyed_sidecar, reranker,
                                                                         monkeypatch):
    # the workbench's old names for the server still work
    at = on_server(opened_app, monkeypatch, keyed_sidecar.url, keyed_sidecar.env["RERANKER_API_KEY"], old_names=True)
    at = upload(at, "pairs.tsv", TSV.encode("gbk"))
    at.selectbox(key="batch_instruction_preset").set_value("Customer support").run()
    at = at.button(key="sidecar_send").click().run()
    assert not at.exception and not at.main.error
    job_id = at.session_state["sidecar_job"][1]
    assert any(s.value.replace("\\", "").startswith(f"Job {job_id[:8]} started on {keyed_sidecar.url}")
               for s in at.success)
    at = at.switch_page("views/sidecar_jobs.py").run()
    deadline = time.monotonic() + 120
    while not any(b.label == "Download CSV" for b in at.get("download_button")):
        assert time.monotonic() < deadline, [e.value for e in at.main.error]
        assert not at.exception and not at.main.error
        time.sleep(0.5)
        at = at.run()
    assert at.selectbox(key="jobs_picker").value == job_id

    [(csv_bytes, json_bytes, _)] = [kept for (url, kept_id, status, _), kept in at.session_state["jobs_results"].items()
                                    if (url, kept_id, status) == (keyed_sidecar.url, job_id, "done")]
    table = pd.read_csv(io.BytesIO(csv_bytes), keep_default_na=False)
    assert table.columns.tolist() == list(EXPORT_COLUMNS)  # the upload's columns are all mapped
    assert table["index"].tolist() == list(range(6)) and table["label"].tolist() == [2, 2, 0, 0, 0, 1]
    capital = table[table["query"] == CAPITAL]
    # the formula-looking document comes back quoted so a spreadsheet shows it as text
    documents = [d.removeprefix("'") for d in capital["document"]]
    assert "=1+1" in documents and "'=1+1" in capital["document"].tolist()
    support = INSTRUCTION_PRESETS["Customer support"]
    assert set(table["instruction"]) == {support}  # the page's instruction reached the job
    want = {d.document: d for d in reranker.rank(CAPITAL, documents, support)}
    assert capital["score"].tolist() == pytest.approx([want[d].score for d in documents], abs=SCORE_TOLERANCE)
    assert capital["rank"].tolist() == [want[d].rank for d in documents]
    rows = json.loads(json_bytes)
    assert [list(r) for r in rows] == [list(EXPORT_COLUMNS)] * 6
    assert sorted(r["index"] for r in rows) == list(range(6)) and {r["model"] for r in rows} == set(table["model"])


def test_a_wrong_api_key_is_named_and_starts_nothing(opened_app, keyed_sidecar, monkeypatch):
    monkeypatch.setenv("RERANKER_SERVER", keyed_sidecar.url)
    monkeypatch.setenv("RERANKER_SERVER_KEY", "not-the-key")
    at = opened_app()
    assert not at.exception
    (error,) = at.main.error
    assert "401" in error.value and "RERANKER\\_SERVER\\_KEY" in error.value
    at = upload(at.switch_page("views/csv_batches.py").run(), "pairs.tsv", TSV.encode("gbk"))
    assert at.button(key="batch_run").disabled and "sidecar_send" not in [b.key for b in at.button]


JSONL = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in [
    {"id": "doc-7", "query": CAPITAL, "document": "北京是中国的首都。", "label": 2},
    {"id": "doc-3", "query": CAPITAL, "document": "上海是中国最大的城市。", "label": 0},
    {"id": "doc-9", "query": SLEEP, "document": "保持规律的作息时间。", "label": 2, "meta": {"source": "faq"}},
])


def test_json_lines_are_mapped_scored_and_a_bad_line_can_be_left_out(page, reranker):
    at = upload(page, "pairs.jsonl", (JSONL + "{not json\n").encode("utf-8"))
    (error,) = at.main.error
    assert "line 4: not valid JSON" in error.value.replace("\\", "")
    at = at.checkbox(key="batch_skip_bad").check().run()
    assert not at.exception
    assert [at.selectbox(key=k).value for k in ("map_query", "map_document", "map_label")] == [
        "query", "document", "label"]
    at = at.button(key="batch_run").click().run()
    assert not at.exception and [e.value for e in at.main.error] == [error.value]  # the left-out line, still told
    results = at.session_state["batch"]["results"]
    assert len(results) == 3
    capital = results[results["query"] == CAPITAL]
    assert capital["score"].tolist() == pytest.approx(
        reranker.score(CAPITAL, capital["document"].tolist()), abs=SCORE_TOLERANCE)


def test_a_json_array_sent_as_a_job_keeps_its_document_ids_in_the_export(opened_app, keyed_sidecar, monkeypatch):
    at = on_server(opened_app, monkeypatch, keyed_sidecar.url, keyed_sidecar.env["RERANKER_API_KEY"])
    rows = [json.loads(line) for line in JSONL.splitlines()]
    at = upload(at, "pairs.json", json.dumps(rows, ensure_ascii=False).encode("utf-8"))
    assert not at.exception and not at.main.error
    at = at.button(key="sidecar_send").click().run()
    job_id = at.session_state["sidecar_job"][1]
    at = at.switch_page("views/sidecar_jobs.py").run()
    deadline = time.monotonic() + 120
    while not any(b.label == "Download CSV" for b in at.get("download_button")):
        assert time.monotonic() < deadline and not at.exception and not at.main.error
        time.sleep(0.5)
        at = at.run()
    [(csv_bytes, _, _)] = [kept for (url, kept_id, status, _), kept in at.session_state["jobs_results"].items()
                           if (kept_id, status) == (job_id, "done")]
    table = pd.read_csv(io.BytesIO(csv_bytes), keep_default_na=False)
    assert table.columns.tolist() == [*EXPORT_COLUMNS, "id", "meta"]  # the upload's other keys, after the schema
    assert table["id"].tolist() == ["doc-7", "doc-3", "doc-9"] and table["document"].tolist()[0] == "北京是中国的首都。"
    assert table["meta"].tolist() == ["", "", '{"source": "faq"}']
