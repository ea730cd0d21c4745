"""A sidecar job followed from a page: progress while it runs (polled without blocking), then its CSV or its error."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from reranker.progress import duration_text
from reranker.sidecar.client import SidecarClient, SidecarError
from reranker.workbench.widgets import plain_markdown

T = TypeVar("T")


def sidecar_job_panel(sidecar: SidecarClient, job_id: str) -> None:
    """A sidecar job: its progress while it runs (polled without blocking the page), then its CSV or its error."""
    if st.session_state.get("sidecar_finished") != job_id:
        _job_progress(sidecar, job_id)
        return
    job = _sidecar_call(sidecar.job, job_id, f"Lost track of job {job_id}")
    if job is None:
        return
    if job["status"] == "done":
        kept = st.session_state.get("sidecar_csv")
        if not kept or kept[0] != job_id:
            csv = _sidecar_call(sidecar.results_csv, job_id,
                                f"Job {job_id} is done but its results could not be fetched")
            if csv is None:
                return
            kept = st.session_state.sidecar_csv = (job_id, csv)
        st.success(f"Job {job_id} is done: {job['progress']['total']:,} pairs scored.")
        st.download_button("Download the job's CSV", kept[1], f"job-{job_id}-results.csv", "text/csv",
                           key="sidecar_csv_download", on_click="ignore", icon=":material/download:")
        return
    progress = job["progress"]
    summary = f"Job {job_id} {job['status']} with {progress['done']:,} of {progress['total']:,} pairs scored."
    st.error(plain_markdown(f"{summary} {job.get('error') or ''}".strip()), title=f"Job {job_id} did not finish")
    if (st.button("Retry the job (keeps what was scored)", key="sidecar_retry")
            and _sidecar_call(sidecar.retry, job_id, f"Job {job_id} could not be retried") is not None):
        del st.session_state.sidecar_finished
        st.rerun()


@st.fragment(run_every=2.0)
def _job_progress(sidecar: SidecarClient, job_id: str) -> None:
    """Reruns on its own every 2 s; once the job has ended, hands over to the whole page."""
    job = _sidecar_call(sidecar.job, job_id, f"Lost track of job {job_id}")
    if job is None:
        return
    if job["status"] not in ("queued", "running"):
        st.session_state.sidecar_finished = job_id
        st.rerun()
    progress, eta = job["progress"], job.get("eta_seconds")
    st.progress(min(float(progress["fraction"]), 1.0),
                text=f"Job {job_id}: {job['status']} · {progress['done']:,} / {progress['total']:,} pairs"
                     + (f" · about {duration_text(eta)} left" if eta is not None else ""))
    if (st.button("Cancel the job", key="sidecar_cancel")
            and _sidecar_call(sidecar.cancel, job_id, f"Job {job_id} could not be cancelled") is not None):
        st.rerun()


def _sidecar_call(call: Callable[[str], T], job_id: str, failure: str) -> T | None:
    """call(job_id), or None with the sidecar's reason shown under the title `failure`."""
    try:
        return call(job_id)
    except SidecarError as e:
        st.error(plain_markdown(str(e)), title=failure)
        return None
