"""The background jobs (of this workbench, or of the sidecar it scores on): what each is doing, its results to
download, Cancel and Retry; or, with nowhere to run them, how to get somewhere."""

import streamlit as st

from reranker.workbench import frame, job_panel, widgets

st.title("Jobs")
st.caption("CSV batches sent as background jobs run where the model is (this workbench, or the sidecar it scores on): "
           "they go on when you leave this page or close the tab, and their results wait here.")

backend = frame.backend()
runner = frame.job_backend()
if frame.still_opening():
    st.stop()  # the frame says what it is waiting for
if backend is None or runner is None:
    job_panel.no_sidecar_help(backend)
    st.stop()
if runner is not backend:
    st.caption(widgets.plain_markdown(f"Jobs run on this workbench's served model, {runner.model_name}, not the "
                                      f"sidebar's {backend.model_name}."))

job_panel.jobs_view(runner.jobs(), runner.model_name)
