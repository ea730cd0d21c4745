"""The Jobs page: the sidecar's jobs listed with their progress, downloads, Cancel and Retry (AppTest on live
sidecars), and in a real browser a job sent from the CSV page that is still there after navigating and reloading."""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from reranker.backends import open_backend
from reranker.core.failures import RerankerError, Unreachable
from reranker.formats.exports import EXPORT_COLUMNS
from reranker.remote.sidecar import SidecarJobs
from reranker.testing.workbench_process import file_input, workbench_process

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<img src=x onerror=alert(1)>.csv"
SERVER_VARIABLES = ("RERANKER_SERVER", "RERANKER_SERVER_KEY", "RERANKER_API_URL", "RERANKER_API_KEY")


def jobs_page(monkeypatch, server: str | None = None, key: str | None = None, job: str | None = None,
              picked: str | None = None) -> AppTest:
    """The Jobs page on `server` (else the model in this process): the first run draws the frame (AppTest draws it
    on a script's first run only, which keeps the backend it chose in the session), the second the page."""
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if server is not None:
        monkeypatch.setenv("RERANKER_SERVER", server)
    if key is not None:
        monkeypatch.setenv("RERANKER_SERVER_KEY", key)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    if picked is not None:
        at.session_state["jobs_picked"] = picked  # as job_panel.pick_job(picked) on another page leaves it
    at.switch_page("views/sidecar_jobs.py")
    if job is not None:
        at.query_params["job"] = job
    return at.run()


def jobs_of(url: str, key: str | None = None) -> SidecarJobs:
    """The job API of the sidecar at `url`, as the pages reach it."""
    return open_backend(url, key).jobs()


def submit(client: SidecarJobs, pairs: int, filename: str = "pairs.csv") -> str:
    rows = "".join(f"question {n % 3},passage number {n}\n" for n in range(pairs))
    columns = {"query": "query", "document": "document"}
    return client.submit_table(filename, f"query,document\n{rows}".encode(), columns)["id"]


def wait_for(client: SidecarJobs, job_id: str, status: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while (job := client.job(job_id))["status"] != status:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements).replace("\\", "")


def listed(at: AppTest):
    (table,) = at.dataframe
    return table.value


def test_without_a_sidecar_the_page_says_how_to_start_one(workbench_model, monkeypatch):
    at = jobs_page(monkeypatch)
    assert not at.exception and not at.main.error
    (info,) = at.main.info
    message = info.value.replace("\\", "")
    assert "Qwen-Ranker sidecar" in message and "./start.sh" in message and "python -m reranker serve" in message
    assert "On a server" in message and not at.dataframe and not at.button


def test_another_precision_in_the_sidebar_keeps_the_jobs_of_the_served_model(open_sidecar, tiny_model_dir,
                                                                             monkeypatch):
    """As under ./start.sh with int8 picked in the sidebar: the model this process serves its API and jobs with (here
    the open sidecar stands for it) still runs the jobs, and the page says it is that model."""
    from reranker import backends
    from reranker.workbench import frame

    served = f"{tiny_model_dir}/"  # the same folder under a name no other test opened
    monkeypatch.setitem(backends._HOSTED, (served, None), lambda: open_backend(open_sidecar.url))
    monkeypatch.setenv("RERANKER_MODEL", served)
    monkeypatch.setenv("RERANKER_DTYPE", "int8")
    job_id = submit(jobs_of(open_sidecar.url), 3, "int8-page.csv")
    at = jobs_page(monkeypatch)
    assert frame.openings().get((f"{served} (int8)", None)).wait(120)
    assert frame.openings().get((served, None)).wait(120)
    at = jobs_page(monkeypatch)
    assert not at.exception and not at.main.error, texts(at.main.error)
    assert "Nowhere to run jobs" not in texts(at.main.info)
    assert job_id[:8] in listed(at)["job"].tolist()
    assert f"not the sidebar's {served} (int8)" in texts(at.main.caption)


def test_a_server_that_runs_no_jobs_says_a_sidecar_is_needed(open_sidecar, monkeypatch):
    # a sidecar's /v1/rerank address, spoken to as any Cohere-style API: it scores, and runs no jobs that way
    at = jobs_page(monkeypatch, server=f"{open_sidecar.url}/v1/rerank")
    assert not at.exception and not at.main.error
    (info,) = at.main.info
    assert "does not run jobs" in info.value and "./start.sh" in info.value.replace("\\", "")


def test_a_sidecar_that_stops_answering_is_named_not_a_traceback(open_sidecar, monkeypatch):
    def down(self, limit=50):
        raise Unreachable(f"Could not reach the sidecar at {self.shown} (Connection refused)")

    monkeypatch.setattr(SidecarJobs, "jobs", down)
    at = jobs_page(monkeypatch, server=open_sidecar.url)
    assert not at.exception
    (error,) = at.main.error
    assert "Connection refused" in error.value and "could not be listed" in error.proto.title


def test_no_jobs_yet_points_to_the_csv_page(open_sidecar, monkeypatch):
    monkeypatch.setattr(SidecarJobs, "jobs", lambda self, limit=50: [])
    at = jobs_page(monkeypatch, server=open_sidecar.url)
    assert not at.exception and not at.main.error and not at.dataframe
    assert f"No jobs on {open_sidecar.url} yet" in texts(at.main.info)


def test_a_done_job_is_listed_with_both_downloads_and_a_hostile_name_stays_text(open_sidecar, monkeypatch):
    client = jobs_of(open_sidecar.url)
    job_id = submit(client, 6, HOSTILE)
    wait_for(client, job_id, "done")
    newer = submit(client, 3, "newer.csv")  # the page shows the newest job unless another is asked for
    wait_for(client, newer, "done")

    at = jobs_page(monkeypatch, server=open_sidecar.url, job=job_id)
    assert not at.exception and not at.main.error
    table = listed(at)
    assert table.columns.tolist() == ["file", "status", "progress", "pairs", "time left", "created", "job"]
    row = table[table["job"] == job_id[:8]].iloc[0]
    assert (row["file"], row["status"], row["progress"], row["pairs"]) == (HOSTILE, "done", 1.0, "6 / 6")
    assert table["job"].tolist().index(newer[:8]) < table["job"].tolist().index(job_id[:8])  # newest first
    assert at.selectbox(key="jobs_picker").value == job_id and at.query_params["job"] == job_id
    assert f"Job {job_id[:8]}" in [h.value for h in at.subheader]
    # the file name is shown as text: every markup character escaped
    assert "\\<img src\\=x onerror\\=alert\\(1\\)\\>\\.csv" in at.caption[-1].value
    assert at.main.success[0].value.replace("\\", "").startswith("Done: 6 pairs scored in ")
    buttons = {b.label: b for b in at.get("download_button")}
    assert set(buttons) == {"Download CSV", "Download JSON"}
    csv, data, _ = at.session_state["jobs_results"][(open_sidecar.url, job_id, "done", 6)]
    scored = pd.read_csv(io.BytesIO(csv), encoding="utf-8-sig")
    assert len(scored) == 6 and scored.columns.tolist() == list(EXPORT_COLUMNS[:-1])  # the export schema
    rows = json.loads(data)
    assert [list(r) for r in rows] == [list(EXPORT_COLUMNS[:-1])] * 6
    assert sorted(r["index"] for r in rows) == scored["index"].tolist() == list(range(6))
    assert "jobs_refresh" in [b.key for b in at.button]  # nothing runs: no polling, a Refresh button instead

    # picking another job shows it, remembers it for the session and puts it in the address
    at = at.selectbox(key="jobs_picker").set_value(newer).run()
    assert not at.exception and f"Job {newer[:8]}" in [h.value for h in at.subheader]
    assert at.session_state["jobs_picked"] == newer and at.query_params["job"] == newer


def test_a_done_job_with_labels_shows_how_well_it_ranks_them(open_sidecar, monkeypatch, reranker):
    from reranker.analysis.ranking_metrics import label_metrics

    client = jobs_of(open_sidecar.url)
    documents = ["The capital of China is Beijing.", "Gravity pulls things down.", "北京是中国的首都。"]
    labels = [int("Beijing" in d or "北京" in d) for d in documents]
    table = "query,document,label\n" + "".join(f"What is the capital of China?,{d},{g}\n"
                                                for d, g in zip(documents, labels))
    job_id = client.submit_table("labelled.csv", table.encode(), {"query": "query", "document": "document",
                                                                   "label": "label"})["id"]
    wait_for(client, job_id, "done")
    at = jobs_page(monkeypatch, server=open_sidecar.url, job=job_id)
    assert not at.exception and not at.main.error
    assert "Against the labels" in [h.value for h in at.subheader]
    ranked = reranker.rank("What is the capital of China?", documents)
    want = label_metrics([float(labels[d.index]) for d in ranked], 10)
    per_query = at.dataframe[-1].value
    assert per_query["NDCG@10"].tolist() == [want["NDCG@10"]] and per_query["MRR"].tolist() == [want["MRR"]]


def test_the_job_picked_on_another_page_is_shown_and_the_address_follows(open_sidecar, monkeypatch):
    client = jobs_of(open_sidecar.url)
    older = submit(client, 3, "older.csv")
    wait_for(client, submit(client, 3, "newest.csv"), "done")
    at = jobs_page(monkeypatch, server=open_sidecar.url, picked=older)
    assert not at.exception and not at.main.error
    assert at.selectbox(key="jobs_picker").value == older and at.query_params["job"] == older


def test_a_running_job_can_be_cancelled_and_retried(keyed_sidecar, monkeypatch):
    key = keyed_sidecar.env["RERANKER_API_KEY"]
    client = jobs_of(keyed_sidecar.url, key)
    job_id = submit(client, 40, "many.csv")  # 20 chunks of 2 pairs, 0.5 s apart
    try:
        at = jobs_page(monkeypatch, server=keyed_sidecar.url, key=key, job=job_id)
        assert not at.exception and not at.main.error
        assert at.selectbox(key="jobs_picker").value == job_id
        (bar,) = at.get("progress")
        assert "pairs scored" in bar.proto.text and "/ 40" in bar.proto.text
        assert "jobs_refresh" not in [b.key for b in at.button]  # polling instead
        at = at.button(key="job_cancel").click().run()
        assert not at.exception and not at.main.error
        assert client.job(job_id)["status"] == "cancelled"
        assert "Cancelled with" in texts(at.main.warning) and "of 40 pairs scored" in texts(at.main.warning)
        done = client.job(job_id)["progress"]["done"]
        if done:  # what it had scored can be downloaded
            assert {b.label for b in at.get("download_button")} == {f"Download the {done:,} scored (CSV)",
                                                                   f"Download the {done:,} scored (JSON)"}
        at = at.button(key="job_retry").click().run()
        assert not at.exception and not at.main.error
        assert client.job(job_id)["status"] in ("queued", "running", "done")
        assert "job_cancel" in [b.key for b in at.button] or at.main.success
    finally:
        try:
            client.cancel(job_id)  # the sidecar is shared: leave it free for the other tests
        except RerankerError:
            pass


def failed_job_panel() -> None:
    """A failed job's panel, on a stand-in sidecar that records what it is asked (AppTest runs this as the script)."""
    import streamlit as st

    from reranker.workbench.job_panel import job_detail

    class Sidecar:
        url = shown = "http://sidecar.invalid"
        scored = [{"index": n, "row": n, "document": f"passage {n}", "score": 0.9 - n / 10, "logit": 2.0 - n,
                   "rank": n + 1, "label": float(n == 0)} for n in range(4)]

        def results_csv(self, job_id: str) -> bytes:
            return b"query,document\n" + b"".join(f"q,passage {n}\n".encode() for n in range(4))

        def results_json(self, job_id: str) -> dict:
            return {"id": job_id, "status": "failed", "queries": [{"query": "q", "results": self.scored}]}

        def retry(self, job_id: str) -> dict:
            st.session_state.retried = job_id
            return {"id": job_id, "status": "queued"}

    job_detail(Sidecar(), {
        "id": "f" * 32, "status": "failed", "kind": "csv", "progress": {"done": 4, "total": 10, "fraction": 0.4},
        "eta_seconds": None, "created_at": 1.7e9, "started_at": 1.7e9 + 1, "finished_at": 1.7e9 + 9,
        "error": "**out of memory** <b>at</b> [chunk](http://x) 3", "filename": "pairs.csv", "columns": None}, "tiny")


def test_a_failed_job_shows_its_error_as_text_and_can_be_retried():
    at = AppTest.from_function(failed_job_panel).run()
    assert not at.exception
    (error,) = at.error
    assert error.proto.title == f"Job {'f' * 8} failed"
    assert error.value.replace("\\", "") == ("Failed with 4 of 10 pairs scored. "
                                              "**out of memory** <b>at</b> [chunk](http://x) 3")
    assert "\\*\\*out" in error.value and "\\<b\\>" in error.value  # escaped: shown exactly as the sidecar wrote it
    assert "job_cancel" not in [b.key for b in at.button]
    assert [b.label for b in at.get("download_button")] == ["Download the 4 scored (CSV)",
                                                            "Download the 4 scored (JSON)"]
    assert "Against the labels (the pairs scored so far)" in [h.value for h in at.subheader]
    assert at.dataframe[0].value["MRR"].tolist() == [1.0]  # the labelled passage ranks first
    at.button(key="job_retry").click().run()
    assert at.session_state["retried"] == "f" * 32


def test_a_job_id_that_is_not_there_falls_back_to_the_newest(open_sidecar, monkeypatch):
    client = jobs_of(open_sidecar.url)
    wait_for(client, submit(client, 3), "done")
    at = jobs_page(monkeypatch, server=open_sidecar.url, job="../health")
    assert not at.exception and not at.main.error
    assert "is not a job id" in texts(at.main.warning)
    at = jobs_page(monkeypatch, server=open_sidecar.url, job="0" * 32)
    assert not at.exception and "404" in texts(at.main.warning)
    assert at.selectbox(key="jobs_picker").value == client.jobs(1)[0]["id"]


def test_a_job_sent_from_the_csv_page_survives_navigation_and_a_reload(tiny_model_dir, keyed_sidecar, browser,
                                                                     tmp_path, output_dir):
    from playwright.sync_api import expect

    env = {**os.environ, "RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DEVICE": "cpu",
           "RERANKER_SERVER": keyed_sidecar.url, "RERANKER_SERVER_KEY": keyed_sidecar.env["RERANKER_API_KEY"],
           "RERANKER_DATA_DIR": str(tmp_path / "data")}
    env.pop("RERANKER_API_URL", None)
    client = jobs_of(keyed_sidecar.url, keyed_sidecar.env["RERANKER_API_KEY"])
    before = {job["id"] for job in client.jobs(1000)}
    table = tmp_path / HOSTILE
    pairs = 40  # 20 chunks of 2, 0.5 s apart: about 10 s, long enough to see it run
    table.write_text("query,document\n" + "".join(f"question {n % 2},passage {n}\n" for n in range(pairs)),
                     encoding="utf-8")
    dialogs: list[str] = []
    with workbench_process(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        nav = page.get_by_test_id("stSidebarNav")
        nav.get_by_role("link", name="CSV batches").click()
        file_input(page, "CSV or TSV file").set_input_files(str(table))
        page.get_by_role("button", name="Run as a background job").click()
        deadline = time.monotonic() + 30
        while not (sent := [job for job in client.jobs(10) if job["id"] not in before]):
            assert time.monotonic() < deadline, "no job reached the sidecar"
            time.sleep(0.2)
        (job,) = sent
        assert job["filename"] == HOSTILE
        nav.get_by_role("link", name="Rerank").click()
        expect(page.get_by_label("Query")).to_be_visible(timeout=30_000)
        nav.get_by_role("link", name="Jobs").click()

        # the job is listed and picked (the newest), followed by itself while it runs, then offered for download
        expect(page.get_by_role("heading", name="Jobs")).to_be_visible(timeout=30_000)
        picked = page.get_by_role("combobox", name="Job")
        expect(picked).to_have_value(re.compile(f"^{job['id'][:8]} · {re.escape(HOSTILE)} · "), timeout=30_000)
        expect(page.get_by_role("button", name="Cancel")).to_be_visible()
        expect(page.get_by_role("button", name="Download CSV")).to_be_visible(timeout=60_000)
        expect(page.get_by_text(f"Done: {pairs} pairs scored")).to_be_visible()
        # the job in the address; and, `streamlit run app.py` setting no cookie, the browser's id (workbench.drafts)
        assert re.search(rf"/jobs\?browser=[0-9a-f]{{32}}&job={job['id']}$", page.url), page.url

        def downloaded_rows() -> list[str]:
            with page.expect_download() as download:
                page.get_by_role("button", name="Download CSV").click()
            assert download.value.suggested_filename == f"job-{job['id']}-results.csv"
            return Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()

        rows = downloaded_rows()
        assert {"query", "document", "score", "rank"} <= set(rows[0].split(",")) and len(rows) == 1 + pairs
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=30_000)
        page.screenshot(path=str(output_dir / "jobs-1440.png"), full_page=True)
        # nothing runs any more, so the page has stopped asking the sidecar
        asked = keyed_sidecar.log_tail(10**9).count("GET /api/jobs?limit=")
        time.sleep(4.5)
        assert keyed_sidecar.log_tail(10**9).count("GET /api/jobs?limit=") == asked

        page.reload()  # a new session: the address alone brings the job back
        expect(picked).to_have_value(f"{job['id'][:8]} · {HOSTILE} · done", timeout=30_000)
        expect(page.get_by_role("button", name="Download CSV")).to_be_visible(timeout=30_000)
        assert downloaded_rows() == rows
        assert page.locator("img[src='x']").count() == 0 and dialogs == []

        phone = browser.new_page(viewport={"width": 390, "height": 1200})  # a phone (tall: the page scrolls inside)
        phone.goto(page.url)
        expect(phone.get_by_role("button", name="Download CSV")).to_be_visible(timeout=30_000)
        phone.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=30_000)
        phone.screenshot(path=str(output_dir / "jobs-390.png"), full_page=True)
        phone.close()
        page.close()


def test_cancel_answers_the_count_the_job_keeps(tmp_path):
    """The chunk being scored when Cancel comes is not saved after it: the page's "Cancelled with N" and its
    downloads of N stay true (a retry scores that chunk again)."""
    from reranker.core.ranking import Judgement
    from reranker.sidecar.job_store import JobStore, NewPair

    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.create("csv", [("q", None)], [NewPair(0, n, f"passage {n}") for n in range(6)])
    assert store.mark_running(job.id)
    first, _ = store.claim_chunk(job.id, 2)
    store.save_scores(job.id, [(p, Judgement(0.5, 0.0, 3, False)) for p in first])
    in_flight, _ = store.claim_chunk(job.id, 2)
    shown = store.cancel(job.id)
    store.save_scores(job.id, [(p, Judgement(0.5, 0.0, 3, False)) for p in in_flight])  # the worker's late save
    assert shown.done_pairs == 2 and store.get(job.id).done_pairs == 2
    assert sum(len(q.ranked) for q in store.results(job.id)) == 2
    store.requeue(job.id)
    assert store.mark_running(job.id) and len(store.claim_chunk(job.id, 10)[0]) == 4
