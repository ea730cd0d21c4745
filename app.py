"""Qwen-Ranker Pro: paste a query and candidate documents, get them reranked by Qwen3-Reranker.

Run with `./start.sh` (or `streamlit run app.py`). This entry point declares the pages, draws the frame they
share (page config, logo, the engine in the sidebar) and runs the page the user is on.
"""

import streamlit as st

from reranker.workbench.frame import draw_frame

page = st.navigation([
    st.Page("views/rerank.py", title="Rerank", icon=":material/sort:", default=True),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:",
            url_path="compare_instructions"),
    st.Page("views/csv_batches.py", title="CSV batches", icon=":material/table:"),
    st.Page("views/evaluate.py", title="Evaluate", icon=":material/analytics:", url_path="evaluate"),
    st.Page("views/tune.py", title="Tune", icon=":material/tune:", url_path="tune"),
    st.Page("views/verify.py", title="Verify", icon=":material/verified:", url_path="verify"),
    st.Page("views/sidecar_jobs.py", title="Jobs", icon=":material/work_history:", url_path="jobs"),
])
draw_frame(page.title)
page.run()
