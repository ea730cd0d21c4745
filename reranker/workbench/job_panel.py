"""Background jobs on the workbench's pages: the Jobs page's table of the recent jobs (kept fresh while any
runs) and the picked job's panel (progress and Cancel, its downloads, or its error and Retry).

The picked job is kept in the session (across pages) and in the Jobs page's address, `?job=<id>` (across reloads).
Another page hands a job over with `pick_job(job_id)` and `job_started(job_id)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from reranker.core.backend import JobService, RerankBackend
from reranker.core.failures import RerankerError
from reranker.core.progress import duration_text
from reranker.formats.exports import Record, export_json, records_of_job
from reranker.workbench.batch_scoring import batch_metrics
from reranker.workbench.widgets import download_buttons, metrics_view, plain_markdown

T = TypeVar("T")
Job = dict[str, Any]

JOBS_PAGE = "views/sidecar_jobs.py"
CSV_PAGE = "views/csv_batches.py"
JOB_PARAM = "job"  # ?job=<id> on the Jobs page
ACTIVE = ("queued", "running")
"""The statuses of a job still to finish."""
LIST_LIMIT = 50
POLL_SECONDS = 2.0
_PICKED = "jobs_picked"  # session: the id of the job picked on the Jobs page
_PICKER = "jobs_picker"  # the picker's widget key
_LISTED = "jobs_listed"  # session: the list fetched by this full run, handed to the fragment's first run
_RESULTS = "jobs_results"  # session: {(sidecar url, job id, status, done): (csv, json, rows)} of jobs shown
_KEPT_RESULTS = 2
METRICS_K = 10
"""The cut-off of a job's NDCG@k."""
_JOB_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def pick_job(job_id: str) -> None:
    """Make `job_id` the job the Jobs page shows next (the CSV page calls this once it has sent a job)."""
    st.session_state[_PICKED] = job_id


def job_started(job_id: str, where: str) -> None:
    """'Job … started on <where>' and a link to the Jobs page with that job picked, for the page that sent it."""
    st.success(f"Job {plain_markdown(short_id(job_id))} started on {plain_markdown(where)}. It runs there in the "
               "background: it goes on if this page is left or closed.", icon=":material/work_history:")
    st.page_link(JOBS_PAGE, label="Follow it on the Jobs page", icon=":material/arrow_forward:",
                 query_params={JOB_PARAM: job_id})


def no_sidecar_help(backend: RerankBackend | None) -> None:
    """What the Jobs page shows when the workbench has nowhere to run jobs: how to get somewhere."""
    how = ("`./start.sh` runs the workbench as one: the pages, the API and the jobs in one process. Or start a "
           "Qwen-Ranker sidecar yourself with `python -m reranker serve` (it listens on `http://127.0.0.1:8502`), "
           "choose **On a server** under **Run the model** in the sidebar and type its address.")
    if backend is not None and not backend.capabilities.in_process:
        can = backend.capabilities
        st.info(f"The server in use ({plain_markdown(can.where)}, a {plain_markdown(can.kind)}) scores requests but "
                "does not run jobs: jobs need a Qwen-Ranker sidecar. " + how,
                title="This server does not run jobs", icon=":material/info:")
    else:
        st.info("Jobs run on a Qwen-Ranker server, which scores big CSV files in the background and keeps them, so "
                "they finish even when this page is closed; this workbench was started without one. " + how,
                title="Nowhere to run jobs", icon=":material/info:")


def jobs_view(sidecar: JobService, model: str) -> None:
    """The sidecar's recent jobs, newest first, then the picked job's panel; refreshed every 2 s while a job is
    queued or running, and not at all once none is. `model`: what the sidecar scores with, for the downloads."""
    jobs = _sidecar_call(sidecar.jobs, LIST_LIMIT, f"The jobs on {sidecar.shown} could not be listed")
    if jobs is None:
        return
    if not jobs:
        st.info(f"No jobs on {plain_markdown(sidecar.shown)} yet. Send one from the CSV batches page: upload a file, "
                "map its columns, then press **Run as a background job**.", icon=":material/inbox:")
        st.page_link(CSV_PAGE, label="CSV batches", icon=":material/table:")
        return
    polling = any(job["status"] in ACTIVE for job in jobs)
    st.session_state[_LISTED] = jobs
    live = st.fragment(run_every=POLL_SECONDS if polling else None)(_live_jobs)
    live(sidecar, model, polling)


def _live_jobs(sidecar: JobService, model: str, polling: bool) -> None:
    """The table, the picker and the panel; as a fragment it reruns alone every 2 s while `polling`, and hands over
    to the whole page (which starts or stops the polling) when that no longer matches the jobs."""
    jobs = st.session_state.pop(_LISTED, None)
    if jobs is None:  # a rerun of this fragment alone: ask again
        jobs = _sidecar_call(sidecar.jobs, LIST_LIMIT, f"The jobs on {sidecar.shown} could not be listed")
        if jobs is None:
            return
    if not jobs or any(job["status"] in ACTIVE for job in jobs) != polling:
        st.rerun()
    top = st.container(horizontal=True, vertical_alignment="center", wrap=True)
    if not polling:  # first, so a narrow screen wraps the caption under it rather than clipping it
        top.button("Refresh", key="jobs_refresh", type="tertiary", icon=":material/refresh:")
    listed = f"The {len(jobs)} most recent jobs on {{}}, newest first" if len(jobs) > 1 else "The one job on {}"
    top.caption(listed.format(plain_markdown(sidecar.shown))
                + (f"; refreshed every {POLL_SECONDS:.0f} s while one runs." if polling else "."))
    st.dataframe(jobs_table(jobs), hide_index=True, key="jobs_table", column_config={
        "file": st.column_config.TextColumn("file", width="medium"),
        "job": st.column_config.TextColumn("job", width="small"),
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
        "created": st.column_config.DatetimeColumn("created", format="D MMM, HH:mm:ss"),
    })
    job = _picked_job(sidecar, jobs)
    st.divider()
    job_detail(sidecar, job, model)


def jobs_table(jobs: list[Job]) -> pd.DataFrame:
    """One row per job: file, status, progress (0 to 1), pairs (done / total), time left, created (local time) and
    job (the short id); what tells jobs apart and how far they are first, for a narrow screen."""
    return pd.DataFrame({
        "file": [job_name(job) for job in jobs],
        "status": [job["status"] for job in jobs],
        "progress": [min(float(job["progress"]["fraction"]), 1.0) for job in jobs],
        "pairs": [f"{job['progress']['done']:,} / {job['progress']['total']:,}" for job in jobs],
        "time left": [time_left(job) for job in jobs],
        "created": [datetime.fromtimestamp(job["created_at"]) for job in jobs],
        "job": [short_id(job["id"]) for job in jobs],
    }, columns=["file", "status", "progress", "pairs", "time left", "created", "job"])


def short_id(job_id: str) -> str:
    """The first 8 characters of a job id: enough to tell jobs apart on a page."""
    return job_id[:8]


def job_name(job: Job) -> str:
    """The uploaded file's name, or what a job sent as JSON is."""
    return job.get("filename") or ("(JSON request)" if job.get("kind") == "json" else "(no file name)")


def time_left(job: Job) -> str:
    """'about 42 s', 'waiting' or '…' while it runs; '' once it has ended."""
    if job["status"] == "queued":
        return "waiting"
    if job["status"] != "running":
        return ""
    eta = job.get("eta_seconds")
    return f"about {duration_text(eta)}" if eta is not None else "…"


def _picked_job(sidecar: JobService, jobs: list[Job]) -> Job:
    """The picker over `jobs` (plus the picked job when it is older than the list), set to the job in ?job=, else
    the one picked earlier in this session, else the newest; returns the picked job."""
    by_id = {job["id"]: job for job in jobs}
    wanted = st.query_params.get(JOB_PARAM) or st.session_state.get(_PICKED)
    if wanted and wanted not in by_id:
        older = _older_job(sidecar, wanted)
        if older is not None:
            by_id[wanted] = older
        else:
            wanted = None
    picked = wanted or jobs[0]["id"]
    _remember(picked)
    st.session_state[_PICKER] = picked
    st.selectbox("Job", list(by_id), key=_PICKER, on_change=_picker_changed,
                 format_func=lambda job_id: f"{short_id(job_id)} · {job_name(by_id[job_id])} · "
                                            f"{by_id[job_id]['status']}")
    return by_id[picked]


def _older_job(sidecar: JobService, job_id: str) -> Job | None:
    """The job `job_id` when the sidecar has it; None after saying why not."""
    if not _JOB_ID.fullmatch(job_id):
        st.warning(plain_markdown(f"{job_id[:80]} is not a job id; showing the newest job instead."))
        return None
    try:
        return sidecar.job(job_id)
    except RerankerError as e:
        st.warning(plain_markdown(f"Job {job_id} cannot be shown ({e}); showing the newest job instead."))
        return None


def _picker_changed() -> None:
    _remember(st.session_state[_PICKER])


def _remember(job_id: str) -> None:
    """Keep the picked job for this session and in the address, so a reload shows it again."""
    st.session_state[_PICKED] = job_id
    if st.query_params.get(JOB_PARAM) != job_id:
        st.query_params[JOB_PARAM] = job_id


def job_detail(sidecar: JobService, job: Job, model: str) -> None:
    """One job: its status and facts; Cancel while it is queued or running; Download CSV and Download JSON once it
    is done; its error and Retry once it failed or was cancelled."""
    job_id, status, progress = job["id"], job["status"], job["progress"]
    done, total = progress["done"], progress["total"]
    st.subheader(f"Job {plain_markdown(short_id(job_id))}")
    st.caption(plain_markdown(job_facts(job)))
    if status in ACTIVE:
        eta = time_left(job)
        st.progress(min(float(progress["fraction"]), 1.0),
                    text=plain_markdown(f"{status.capitalize()}: {done:,} / {_pairs(total)} scored"
                                        + (f", {eta} left" if eta.startswith("about") else "")))
        if (st.button("Cancel", key="job_cancel", icon=":material/cancel:")
                and _sidecar_call(sidecar.cancel, job_id, f"Job {short_id(job_id)} could not be cancelled")):
            st.rerun()
    elif status == "done":
        took = _took(job)
        st.success(plain_markdown(f"Done: {_pairs(total)} scored" + (f" in {took}." if took else ".")),
                   icon=":material/check_circle:")
        _results_view(sidecar, job, model)
    else:
        summary = f"{status.capitalize()} with {done:,} of {_pairs(total)} scored."
        if status == "failed":
            st.error(plain_markdown(f"{summary} {job.get('error') or 'The sidecar gave no reason.'}"),
                     title=f"Job {plain_markdown(short_id(job_id))} failed")
        else:
            st.warning(plain_markdown(summary), icon=":material/cancel:")
        if (st.button("Retry (keeps what was scored)", key="job_retry", icon=":material/replay:")
                and _sidecar_call(sidecar.retry, job_id, f"Job {short_id(job_id)} could not be retried")):
            st.rerun()
        if done:
            _results_view(sidecar, job, model)


def _pairs(count: int) -> str:
    return f"{count:,} pair{'' if count == 1 else 's'}"


def _results_view(sidecar: JobService, job: Job, model: str) -> None:
    """A job's downloads (a cancelled or failed job's: the pairs it had scored) and, with labels, how it ranks them."""
    job_id, done = job["id"], job["progress"]["done"]
    results = _results(sidecar, job, model)
    if results is None:
        return
    csv, data, records = results
    partial = job["status"] != "done"
    download_buttons(csv, data, f"job-{job_id}-results", key="job", scored=done if partial else None)
    per_query = batch_metrics(pd.DataFrame(records), METRICS_K)
    if len(per_query):
        st.subheader("Against the labels" + (" (the pairs scored so far)" if partial else ""))
        metrics_view(per_query, key="job_metrics")


def job_facts(job: Job) -> str:
    """'pairs.csv · id … · created 14:03:12 · started … · finished …', in the workbench's local time."""
    facts = [job_name(job), f"id {job['id']}"]
    for what in ("created", "started", "finished"):
        when = job.get(f"{what}_at")
        if when is not None:
            facts.append(f"{what} {_local_time(when)}")
    return " · ".join(facts)


def _local_time(timestamp: float) -> str:
    when = datetime.fromtimestamp(timestamp)
    return when.strftime("%H:%M:%S" if when.date() == datetime.now().date() else "%d %b %Y, %H:%M:%S")


def _took(job: Job) -> str | None:
    started, finished = job.get("started_at"), job.get("finished_at")
    if started is None or finished is None:
        return None
    seconds = finished - started
    return "under a second" if seconds < 0.5 else duration_text(seconds)


def _results(sidecar: JobService, job: Job, model: str) -> tuple[bytes, bytes, list[Record]] | None:
    """A finished job's CSV, JSON and rows in the export schema, fetched once per session while the job stays as it
    is (a retried job's change); the last few kept."""
    kept: dict[tuple, tuple[bytes, bytes, list[Record]]] = st.session_state.setdefault(_RESULTS, {})
    job_id = job["id"]
    key = (sidecar.shown, job_id, job["status"], job["progress"]["done"])
    if key not in kept:
        failure = f"Job {short_id(job_id)} is {job['status']} but its results could not be fetched"
        csv = _sidecar_call(sidecar.results_csv, job_id, failure)
        answer = _sidecar_call(sidecar.results_json, job_id, failure) if csv is not None else None
        if csv is None or answer is None:
            return None
        records = records_of_job(answer, model)
        while len(kept) >= _KEPT_RESULTS:
            del kept[next(iter(kept))]
        kept[key] = (csv, export_json(records).encode("utf-8"), records)
    return kept[key]


def _sidecar_call(call: Callable[..., T], arg: Any, failure: str) -> T | None:
    """call(arg), or None with the sidecar's reason shown under the title `failure`."""
    try:
        return call(arg)
    except RerankerError as e:
        st.error(plain_markdown(str(e)), title=plain_markdown(failure))
        return None
