"""The sidecar's background jobs: what each is doing, its results to download, Cancel and Retry; or, with no
sidecar to run them, how to get one."""

import streamlit as st

from reranker.workbench import frame, job_panel

st.title("Jobs")
st.caption("CSV batches sent to the Qwen-Ranker sidecar run there in the background: they go on when you leave this "
           "page or close the tab, and their results wait here.")

backend = frame.backend()
sidecar = frame.job_service()
if frame.still_opening():
    st.stop()  # the frame says what it is waiting for
if backend is None or sidecar is None:
    job_panel.no_sidecar_help(backend)
    st.stop()

job_panel.jobs_view(sidecar, backend.model_name)
