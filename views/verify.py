"""Does the reranker you serve give the model's scores? An address (or a model in another dtype, or a converted
folder) checked with the probes against the exact engine on the same weights: a verdict, the diagnosis with its
fix, every pair's scores, the report as JSON. The same as `python -m reranker verify` (docs/VERIFY.md)."""

import json
import tempfile
from pathlib import Path

import streamlit as st

from reranker.analysis.probes import probe_suite
from reranker.analysis.verification import DRIFT, dataset_measures, other_model_note, verify
from reranker.backends import open_reference, open_targets
from reranker.core.failures import RerankerError
from reranker.core.model_names import model_and_dtype
from reranker.workbench import frame, widgets
from reranker.workbench.dataset_upload import SAMPLE, uploaded_dataset
from reranker.workbench.verification_view import (
    VERDICT_ICONS,
    agreement_figure,
    figures_text,
    measures_frame,
    pair_frame,
    probe_frame,
)

NO_DATASET, SAMPLE_CHOICE, UPLOAD_CHOICE = "Probes only", "And the sample dataset", "And my own dataset"


@st.cache_resource(max_entries=1, show_spinner=False)
def reference_engine(name: str, max_length: int):
    """The exact engine on `name`, kept for the next check (one at a time: it holds a copy of the weights)."""
    return open_reference(name, name, max_length)


backend = frame.backend()
model_here = model_and_dtype(backend.model_name)[0] if backend is not None else ""

st.title("Verify a deployment")
st.caption("Is the reranker you serve (vLLM, TEI, llama.cpp, this project's API, a quantized or converted model) "
           "giving the model's scores? Probes sent as your clients send them, compared with the exact engine on the "
           "same weights here; the same as `python -m reranker verify`.")

target = st.text_input("What to check", key="verify_target", persist_state="session",
                       placeholder="http://my-server:8000/v1/rerank, or a model in another dtype: "
                                   f"{model_here or 'Qwen/Qwen3-Reranker-0.6B'} (int8)",
                       help="An address ending in /v1/rerank, /v2/rerank, /rerank (TEI) or /score is called as "
                            "clients call it; a base address: each rerank address it offers. A model name with a "
                            "dtype, or a folder, runs in this process.").strip()
reference_column, key_column = st.columns(2)
reference = reference_column.text_input("Reference model (the same weights)", key="verify_reference",
                                        persist_state="session", placeholder="the model the server says it serves",
                                        help="Hub id or folder; empty: the model the target says it serves").strip()
key = key_column.text_input("The server's API key (if it wants one)", type="password", key="verify_key").strip()
drift_column, backend_column = st.columns(2)
drift = drift_column.number_input("Drift allowed for 'approximate' (|dp|)", min_value=0.0001, max_value=0.5,
                                  value=DRIFT, step=0.01, format="%.4f", key="verify_drift", persist_state="session")
through_backend = backend_column.checkbox("Through this project's backend for that server", key="verify_backend",
                                          help="Check what this project's own client gets (it builds the prompt "
                                               "itself), not what RAG clients get.")
prompt_halves = backend_column.checkbox("Send the prompt's two halves (a seq-cls export)", key="verify_halves",
                                        disabled=through_backend,
                                        help="For a server holding a Qwen3-Reranker exported as a sequence "
                                             "classifier (TEI, Infinity): send the model card's prompt in two "
                                             "halves, as the export's README tells its clients to.")

data_choice = st.radio("Compare on", [NO_DATASET, SAMPLE_CHOICE, UPLOAD_CHOICE], horizontal=True,
                       key="verify_data", persist_state="session",
                       help="With a labelled dataset both rerank the first stage's top K and each measure is "
                            "compared with a paired test (evaluate's formats, docs/EVALUATE.md).")
dataset, run_file, dataset_ready = None, None, True
if data_choice == SAMPLE_CHOICE:
    dataset, run_file = SAMPLE, SAMPLE / "bm25.trec"
elif data_choice == UPLOAD_CHOICE:
    st.session_state.setdefault("verify_folder", tempfile.mkdtemp(prefix="reranker-verify-"))
    uploaded = uploaded_dataset("verify_files", lambda digest: Path(st.session_state.verify_folder) / digest[:16])
    dataset, run_file, dataset_ready = uploaded.folder, uploaded.run_file, uploaded.ready
top_k = 10
if dataset is not None:
    top_k = int(st.number_input("Rerank each query's top K", min_value=1, max_value=1000, value=10,
                                key="verify_top_k"))

if st.button("Verify", type="primary", disabled=not target or not dataset_ready, key="verify_run"):
    st.session_state.pop("verify_reports", None)
    with st.status("Checking…", expanded=True) as status:
        try:
            targets, served = open_targets(target, key or None, through_backend,
                                           send_prompt_halves=prompt_halves and not through_backend)
            status.write(f"Target answers: {len(targets)} address{'es' if len(targets) > 1 else ''} to check.")
            name = reference or served
            if not name:
                raise ValueError(f"{target} does not say which model it serves: name the reference model above")
            status.write(f"Loading the reference, {name}, in float32…")
            engine = reference_engine(model_and_dtype(name)[0], 8192)
            reports = []
            for checked in targets:
                status.write(f"Probing {checked.capabilities.where}…")
                report = verify(engine, checked, probe_suite(), drift, status.write)
                report.notes += other_model_note(served, reference or None)
                if dataset is not None:
                    report.measures = dataset_measures(engine, checked, dataset, run_file, top_k, None, status.write)
                reports.append(report.document())
            st.session_state.verify_reports = reports
            status.update(label="Checked", state="complete", expanded=False)
        except (RerankerError, ValueError) as e:
            status.update(label="Could not check", state="error")
            st.error(widgets.plain_markdown(str(e)), title="The target could not be checked")

reports = st.session_state.get("verify_reports")
if not reports:
    st.info("Name what to check, then press **Verify**. Nothing is sent anywhere but to that address.")
    st.stop()

tabs = st.tabs([f"{r['verdict']}: {r['target']}" for r in reports]) if len(reports) > 1 else [st]
for n, (tab, report) in enumerate(zip(tabs, reports)):
    with tab.container():
        verdict = report["verdict"]
        said = {"exact": st.success, "approximate": st.warning, "wrong": st.error}[verdict]
        said(widgets.plain_markdown(f"{verdict.upper()}: {report['target']} against {report['reference']}. "
                                    f"{figures_text(report)}"), icon=VERDICT_ICONS[verdict])
        for diagnosis in report["diagnoses"]:
            st.error(widgets.plain_markdown(f"{diagnosis['evidence']}. Fix: {diagnosis['fix']}"),
                     title=f"Diagnosis: {diagnosis['cause'].replace('_', ' ')}")
        for note in report.get("notes", []):
            st.warning(widgets.plain_markdown(note), icon=":material/info:")
        if report.get("measures"):
            measures = report["measures"]
            st.subheader(f"On the dataset: the top {measures['top_k']} of {measures['queries']} queries")
            st.dataframe(measures_frame(report), hide_index=True, key=f"verify_measures_{n}",
                         column_config={"p": st.column_config.NumberColumn(format="%.3g")})
        st.dataframe(probe_frame(report), hide_index=True, key=f"verify_probes_{n}",
                     column_config={"max |dp|": st.column_config.NumberColumn(format="%.2g"),
                                    "catches": st.column_config.TextColumn(width="large")})
        st.plotly_chart(agreement_figure(report), key=f"verify_scatter_{n}")
        with st.expander("Every pair"):
            st.dataframe(pair_frame(report), hide_index=True, key=f"verify_pairs_{n}")
        st.download_button("Report (JSON)", json.dumps(report, ensure_ascii=False, indent=1), f"verify-{n + 1}.json",
                           "application/json", key=f"verify_json_{n}", on_click="ignore", icon=":material/download:")
