"""Upload a table of (query, document) pairs, map its columns, score it all, download the ranking."""

import hashlib
import time

import streamlit as st

from reranker.core.backend import BackendError
from reranker.formats.columns import guess_columns
from reranker.formats.exports import export_csv, export_json, with_input_columns
from reranker.formats.tables import (
    TableError,
    decode_text,
    delimiter_of,
    is_json,
    pairs_from_table,
    read_table,
    read_table_skipping,
)
from reranker.workbench import ASSETS, frame, job_panel, widgets
from reranker.workbench.batch_scoring import batch_metrics, run_batch

NONE = "(none)"
ALL_QUERIES = "(all queries)"
BIG_BATCH_PAIRS = 1_000
# The results table's columns: the document in view, the instruction shown once above it.
BATCH_TABLE = ["rank", "score", "logit", "label", "document", "passage", "query", "index", "tokens", "truncated"]

backend = frame.backend()

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
    st.stop()
data = upload.getvalue()
try:
    table = read_table(data, upload.name)
except TableError as e:
    if not str(e).startswith(("line ", "this file could not be read as")):  # not a row it could leave out
        st.error(widgets.plain_markdown(str(e)), title=f"{widgets.plain_markdown(upload.name)} cannot be used")
        st.stop()
    st.error(widgets.plain_markdown(str(e)), title=f"{widgets.plain_markdown(upload.name)} has a row that cannot "
             "be read")
    if not st.checkbox("Leave out the rows that cannot be read, and go on with the rest", key="batch_skip_bad"):
        st.stop()
    try:
        table, skipped = read_table_skipping(data, upload.name)
    except TableError as again:
        st.error(widgets.plain_markdown(str(again)), title=f"{widgets.plain_markdown(upload.name)} cannot be used")
        st.stop()
    shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5:,} more" if len(skipped) > 5 else "")
    st.warning(widgets.plain_markdown(f"{len(skipped):,} left out ({shown}). {len(table):,} rows are used; their "
                                      "input # counts the rows read."), icon=":material/rule:")
    # what a background job gets: the rows read, as they were (no cell changed), nothing it would refuse
    data = (table.to_json(orient="records", lines=True, force_ascii=False) if is_json(upload.name) else
            table.to_csv(index=False, sep=delimiter_of(decode_text(data), upload.name))).encode("utf-8")

st.subheader("Columns")
columns = list(table.columns)
if len(columns) < 2:
    st.error(widgets.plain_markdown(
        f"{upload.name} has one column ({columns[0]}); a batch needs a query column and a document column. "
        "Is it separated by something other than commas or tabs?"), title="No document column")
    st.stop()
guess = guess_columns(table)
optional = [NONE, *columns]


def index_of(options: list[str], name: str | None, fallback: int) -> int:
    return options.index(name) if name in options else min(fallback, len(options) - 1)


query_column, document_column, label_column, instruction_column = st.columns(4)
query_name = query_column.selectbox("Query column", columns, index=index_of(columns, guess["query"], 0),
                                    key="map_query")
document_name = document_column.selectbox("Document column", columns, index=index_of(columns, guess["document"], 1),
                                          key="map_document")
label_name = label_column.selectbox("Label column (optional)", optional, index=index_of(optional, guess["label"], 0),
                                    key="map_label")
instruction_name = instruction_column.selectbox("Instruction column (optional)", optional,
                                                index=index_of(optional, guess["instruction"], 0),
                                                key="map_instruction")
unnamed = [f"{role} = {name}" for role, name in (("query", query_name), ("document", document_name))
           if guess[role] is None]
if unnamed:
    st.warning(widgets.plain_markdown(
        f"No column is named like a {' or '.join(r.split(' =')[0] for r in unnamed)}, so the columns were guessed by "
        f"position: {', '.join(unnamed)}. Check them above before scoring."), icon=":material/help:")
mapping = {"query": query_name, "document": document_name,
           "label": None if label_name == NONE else label_name,
           "instruction": None if instruction_name == NONE else instruction_name}
instruction = widgets.instruction_picker("Instruction for rows without one", key="batch_instruction")
passages = widgets.passage_setting("batch_passage_tokens")
if query_name == document_name:
    st.error("The query and the document need different columns.")
    st.stop()
try:
    rows = pairs_from_table(table, mapping["query"], mapping["document"], mapping["label"], mapping["instruction"])
except TableError as e:
    st.error(widgets.plain_markdown(str(e)), title="These columns cannot be used")
    st.stop()
query_count = len({(r.query, r.instruction) for r in rows})
empty = sum(not r.query.strip() or not r.document.strip() for r in rows)
if empty:
    st.warning(f"{empty} row{'s have' if empty > 1 else ' has'} an empty query or document; "
               "they are scored as they are.")

st.subheader("Preview")
labelled = sum(r.label is not None for r in rows)
st.caption(f"{len(rows):,} pairs · {query_count:,} queries"
           + (f" · {labelled:,} labelled" if mapping["label"] else "") + f" · first {min(len(table), 50)} rows:")
st.dataframe(table.head(50), hide_index=True, key="batch_preview")

k_column, _ = st.columns([1, 3])
k = int(k_column.number_input("k for NDCG@k", min_value=1, max_value=100, value=10, key="batch_k",
                              persist_state="session"))
run_key = (hashlib.sha256(data).hexdigest(), tuple(mapping.items()), instruction, passages,
           backend.model_name if backend is not None else None)
sidecar = frame.job_service()
if len(rows) > BIG_BATCH_PAIRS:
    where = ("run it as a background job (below): it survives a reload and is listed on the Jobs page"
             if sidecar is not None else
             "run it as a background job on a Qwen-Ranker server: start the workbench with ./start.sh, which "
             "brings one, or use python -m reranker batch for files of any size")
    st.info(f"{len(rows):,} pairs keep this page busy while they are scored (Cancel keeps what was done). "
            f"For a file this size, {where}.", icon=":material/schedule:")
score = st.button(f"Score {len(rows):,} pairs", type="primary", disabled=backend is None, key="batch_run")
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
    results = batch["results"]
    st.subheader("Results")
    st.caption(f"{len(results):,} pairs scored in {batch['seconds']:.1f} s; grouped by query, best first.")
    queries = list(dict.fromkeys(results["query"]))
    pick = st.selectbox("Show", [ALL_QUERIES, *queries], key="batch_filter")
    shown = results if pick == ALL_QUERIES else results[results["query"] == pick]
    instructions = shown.drop_duplicates(["query", "instruction"])[["query", "instruction"]]
    if shown["instruction"].nunique() == 1:
        st.markdown(f"**Instruction:** {widgets.plain_markdown(str(shown['instruction'].iloc[0]))}")
    else:
        with st.expander(f"Instructions of the {len(instructions):,} queries"):
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
    used = {name for name in mapping.values() if name}
    records = with_input_columns(results, table.iloc[results["index"]], used).to_dict("records")
    csv_column, json_column = st.columns(2)
    csv_column.download_button("Download CSV", export_csv(records), "batch-reranked.csv", "text/csv",
                               key="batch_csv", on_click="ignore", width="stretch")
    json_column.download_button("Download JSON", export_json(records), "batch-reranked.json",
                                "application/json", key="batch_json", on_click="ignore", width="stretch")

    per_query = batch_metrics(results, k)
    if len(per_query):
        st.subheader("Against the labels")
        widgets.metrics_view(per_query, key="batch_metrics")
    elif mapping["label"]:
        st.caption("No row carries a label, so there are no metrics.")

# Optional: hand the upload over as a background job (where the backend runs jobs: this workbench, or a sidecar).
if sidecar is not None:
    st.divider()
    st.subheader("Run as a background job")
    st.caption(f"The file is scored in the background on {widgets.plain_markdown(sidecar.shown)}, where it "
               "survives a reload or a restart; the Jobs page follows it and offers its results.")
    if st.button("Run as a background job", key="sidecar_send"):
        try:
            job_id = sidecar.submit_table(upload.name, data, mapping, instruction, passages)["id"]
            st.session_state.sidecar_job = (run_key[0], job_id)  # said for this file only
            job_panel.pick_job(job_id)
        except (BackendError, ValueError, KeyError) as e:
            st.error(widgets.plain_markdown(str(e)), title="The job was not started")
    sent = st.session_state.get("sidecar_job")
    if sent is not None and sent[0] == run_key[0]:
        job_panel.job_started(sent[1], sidecar.shown)
