"""Upload a table of (query, document) pairs, map its columns, score it all, download the ranking."""

import hashlib
import io
import json
import time

import pandas as pd
import streamlit as st

from reranker.core.failures import RerankerError
from reranker.formats.exports import export_csv, export_json, with_input_columns
from reranker.workbench import ASSETS, draft_panel, frame, job_panel, table_upload, widgets
from reranker.workbench.batch_scoring import batch_metrics, run_batch

ALL_QUERIES = "(all queries)"
BIG_BATCH_PAIRS = 1_000
# The results table's columns: the document in view, the instruction shown once above it.
BATCH_TABLE = ["rank", "score", "logit", "label", "document", "passage", "query", "index", "tokens", "truncated"]

# the inputs a reload brings back (workbench.drafts); the file is not kept, the last batch's results are
INPUTS = ("batch_k", "batch_instruction_preset", "batch_instruction_text", "batch_passage_tokens")


def batch_json(batch: dict, filename: str) -> str:
    """A scored batch as JSON, for the page's history: a reload shows it again without the file."""
    return json.dumps({"filename": filename, "seconds": batch["seconds"], "key": repr(batch["key"]),
                       "results": batch["results"].to_json(orient="split", force_ascii=False),
                       "records": batch["records"]}, ensure_ascii=False, default=str)


def show_last(body: str) -> None:
    kept = json.loads(body)
    st.session_state.batch_kept = {"filename": kept["filename"], "seconds": kept["seconds"], "key": kept["key"],
                                   "results": pd.read_json(io.StringIO(kept["results"]), orient="split"),
                                   "records": kept["records"]}


def show_results(batch: dict, k: int, label_mapped: bool) -> None:
    """A scored batch: its table (one query or all), its downloads and, with labels, its metrics."""
    results = batch["results"]
    st.subheader("Results")
    st.caption(f"{widgets.counted(len(results), 'pair')} scored in {batch['seconds']:.1f} s; grouped by query, best "
               "first.")
    queries = list(dict.fromkeys(results["query"]))
    pick = st.selectbox("Show", [ALL_QUERIES, *queries], key="batch_filter")
    shown = results if pick == ALL_QUERIES else results[results["query"] == pick]
    instructions = shown.drop_duplicates(["query", "instruction"])[["query", "instruction"]]
    if shown["instruction"].nunique() == 1:
        st.markdown(f"**Instruction:** {widgets.plain_markdown(str(shown['instruction'].iloc[0]))}")
    else:
        with st.expander(f"Instructions of the {widgets.counted(len(instructions), 'query', 'queries')}"):
            st.dataframe(instructions, hide_index=True, key="batch_instructions")
    view = shown[[c for c in BATCH_TABLE if c in shown.columns]].assign(index=shown["index"] + 1)
    st.dataframe(view, hide_index=True, key="batch_results",
                 column_config={
                     "rank": st.column_config.NumberColumn("rank", width="small"),
                     "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.4f",
                                                              width="small"),
                     "logit": st.column_config.NumberColumn("log-odds", format="%+.3f", width="small"),
                     "document": st.column_config.TextColumn("document", width="large"),
                     "index": st.column_config.NumberColumn("row", help="The row in the uploaded file (1 = the "
                                                            "first row under the header)", width="small"),
                 })
    widgets.download_buttons(export_csv(batch["records"]), export_json(batch["records"]), "batch-reranked",
                             key="batch")
    per_query = batch_metrics(results, k)
    if len(per_query):
        st.subheader("Against the labels")
        widgets.metrics_view(per_query, key="batch_metrics")
    elif label_mapped:
        st.caption("No row carries a label, so there are no metrics.")


backend = frame.backend()
draft_panel.restore("csv", INPUTS, show_last)

st.title("CSV batches")
st.caption("One row per (query, document) pair, with an optional relevance label and instruction per row. "
           "CSV or TSV, or JSON (one object a line, or an array of objects: its keys are the columns); UTF-8, UTF-8 "
           "with BOM or GBK; up to 20 MB. Other columns, such as a document id, come back in the downloads.")
st.download_button("Sample file", (ASSETS / "samples" / "batch_sample.csv").read_bytes(),
                   "batch_sample.csv", "text/csv", key="sample_csv", on_click="ignore", type="tertiary",
                   icon=":material/download:")

upload = st.file_uploader("CSV or TSV file, or JSON", type=["csv", "tsv", "tab", "txt", "json", "jsonl", "ndjson"],
                          key="batch_file")
if upload is None:
    st.info("Upload a file to start; its columns are mapped in the next step.")
    kept = st.session_state.get("batch_kept")
    if kept is not None:  # after a reload: the last batch of this browser, without its file
        st.caption(widgets.plain_markdown(f"Your last batch, {kept['filename']}, as it was scored (kept for a "
                                          "reload); upload the file again to change or score it."))
        st.session_state.setdefault("batch_k", 10)
        show_results(kept, int(st.session_state["batch_k"]), label_mapped=False)
    st.stop()
read = table_upload.uploaded_table(upload)
if read is None:
    st.stop()
table, data = read

st.subheader("Columns")
mapping = table_upload.column_mapping(table, upload.name)
if mapping is None:
    st.stop()
instruction = widgets.instruction_picker("Instruction for rows without one", key="batch_instruction")
passages = widgets.passage_setting("batch_passage_tokens")
rows = table_upload.pair_rows(table, mapping)
if rows is None:
    st.stop()
query_count = len({(r.query, r.instruction) for r in rows})

st.subheader("Preview")
labelled = sum(r.label is not None for r in rows)
shown_rows = min(len(table), 50)
st.caption(f"{widgets.counted(len(rows), 'pair')} · {widgets.counted(query_count, 'query', 'queries')}"
           + (f" · {labelled:,} labelled" if mapping["label"] else "")
           + (" · the only row:" if shown_rows == 1 else f" · first {shown_rows} rows:"))
st.dataframe(table.head(50), hide_index=True, key="batch_preview")

k_column, _ = st.columns([1, 3])
st.session_state.setdefault("batch_k", 10)  # a default given here, not to the widget: a reload may restore it
k = int(k_column.number_input("k for NDCG@k", min_value=1, max_value=100, key="batch_k",
                              persist_state="session"))
draft_panel.keep_inputs("csv", INPUTS)
run_key = (hashlib.sha256(data).hexdigest(), tuple(mapping.items()), instruction, passages,
           backend.model_name if backend is not None else None)
job_runner = frame.job_backend()
sidecar = job_runner.jobs() if job_runner is not None else None
if len(rows) > BIG_BATCH_PAIRS:
    where = ("run it as a background job (below): it survives a reload and is listed on the Jobs page"
             if sidecar is not None else
             "run it as a background job on a Qwen-Ranker server: start the workbench with ./start.sh, which "
             "brings one, or use python -m reranker batch for files of any size")
    st.info(f"{len(rows):,} pairs keep this page busy while they are scored (Cancel keeps what was done). "
            f"For a file this size, {where}.", icon=":material/schedule:")
score = st.button(f"Score {widgets.counted(len(rows), 'pair')}", type="primary", disabled=backend is None,
                  key="batch_run")
widgets.cancel_notice("batch", "press Score to score the rest.")
if score and backend is not None:
    started = time.perf_counter()
    with widgets.scoring_errors_shown(), widgets.scoring_run("batch") as show_progress:
        results = run_batch(widgets.score_cache(), backend, rows, instruction, show_progress, passages)
        st.session_state.batch = {"key": run_key, "results": results, "seconds": time.perf_counter() - started}

batch = st.session_state.get("batch")
if batch is not None and batch["key"] != run_key:
    st.caption("The file, the columns or the instruction changed since the last run: press Score to update.")
    batch = None
if batch is not None:
    used = {name for name in mapping.values() if name}
    if "records" not in batch:
        batch["records"] = with_input_columns(batch["results"], table.iloc[batch["results"]["index"]],
                                              used).to_dict("records")
        draft_panel.keep_result("csv", f"{upload.name} · {widgets.counted(len(rows), 'pair')}",
                                batch_json(batch, upload.name))
    show_results(batch, k, label_mapped=bool(mapping["label"]))

# Optional: hand the upload over as a background job (where the backend runs jobs: this workbench, or a sidecar).
if sidecar is not None:
    st.divider()
    st.subheader("Run as a background job")
    other_model = (f" with {job_runner.model_name}, the model it serves (not {backend.model_name})"
                   if job_runner is not None and backend is not None and job_runner is not backend else "")
    st.caption(f"The file is scored in the background on {widgets.plain_markdown(sidecar.shown + other_model)}, "
               "where it survives a reload or a restart; the Jobs page follows it and offers its results.")
    if st.button("Run as a background job", key="sidecar_send"):
        try:
            job_id = sidecar.submit_table(upload.name, data, mapping, instruction, passages)["id"]
            st.session_state.sidecar_job = (run_key[0], job_id)  # said for this file only
            job_panel.pick_job(job_id)
        except (RerankerError, ValueError, KeyError) as e:
            st.error(widgets.plain_markdown(str(e)), title="The job was not started")
    sent = st.session_state.get("sidecar_job")
    if sent is not None and sent[0] == run_key[0]:
        job_panel.job_started(sent[1], sidecar.shown)
