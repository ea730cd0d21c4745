"""Fit the model to your labels: calibrate its scores into probabilities, or fine-tune it with LoRA, from the sample or
uploaded labelled files. The same code as `python -m reranker calibrate` and `finetune` (docs/TUNE.md); the fine-tuning
runs as that command in the background, so a reload or a closed tab finds it where it is."""

import json
import time
from pathlib import Path

import streamlit as st

from reranker.core.addresses import is_server
from reranker.core.calibrated import METHODS, load_calibration
from reranker.core.model_names import model_and_dtype
from reranker.workbench import frame, widgets
from reranker.workbench.dataset_upload import SAMPLE, uploaded_dataset
from reranker.workbench.evaluation_view import in_their_words
from reranker.workbench.saved_sessions import data_folder
from reranker.workbench.tuning_view import (
    TuneCommandFailed,
    before_after_table,
    calibration_table,
    current_job,
    error_of,
    forget_job,
    loss_figure,
    progress_lines,
    reliability_figure,
    run_calibrate,
    said_lines,
    start_finetune,
    tune_folder,
)

SAMPLE_CHOICE = "The sample: 30 queries, English and Chinese"
UPLOAD_CHOICE = "My own files"
JUDGEMENTS = "judgements.sqlite3"  # the Evaluate page's store: pairs it judged are not judged again


def use_tuned(folder: str) -> None:
    st.session_state.backend_where = frame.IN_PROCESS
    st.session_state.model_choice = folder  # listed among the models once its evaluation.json is written
    st.session_state.pop(frame.CALIBRATION, None)


def apply_calibration(path: str) -> None:
    st.session_state[frame.CALIBRATION] = path


backend = frame.backend()
spec = st.session_state.get("frame_backend")
data = data_folder()

st.title("Tune")
st.caption("Fit the model to your labels: **calibrate** its scores into probabilities you can threshold, or "
           "**fine-tune** it with LoRA and see the gain on held-out queries. The same as `python -m reranker "
           "calibrate` and `finetune` (docs/TUNE.md).")

source = st.radio("Labelled data", [SAMPLE_CHOICE, UPLOAD_CHOICE], horizontal=True, key="tune_source",
                  persist_state="session",
                  help="Labels made on the Rerank cards: download them there (Download labels for Evaluate) and "
                       "upload the zip here; one query is too few to tune on, so gather several.")
names: dict[str, str] = {}
data_ready = True
if source == SAMPLE_CHOICE:
    folder, run_file = SAMPLE, SAMPLE / "bm25.trec"
    st.caption("The sample (assets/eval_sample, with a BM25 run). With random or tiny weights the figures mean "
               "nothing: real tuning needs the real weights.")
else:
    uploaded = uploaded_dataset("tune_files", lambda digest: tune_folder(data).resolve() / "uploads" / digest[:16])
    folder, run_file, data_ready, names = uploaded.folder, uploaded.run_file, uploaded.ready, uploaded.names

st.session_state.setdefault("tune_top_k", 20)
top_k = int(st.number_input("Each query's top K of the first stage (the pairs calibrated; where fine-tuning's hard "
                            "negatives come from)", min_value=2, max_value=1000, key="tune_top_k",
                            persist_state="session"))

calibrate_tab, finetune_tab = st.tabs(["Calibrate", "Fine-tune"])

with calibrate_tab:
    st.caption("A monotone map from the model's log-odds to P(relevant), fitted on the labelled pairs; the figures "
               "before and after are cross-validated by query. The ranking never changes.")
    method = st.radio("Method", METHODS, horizontal=True, key="tune_method", persist_state="session",
                      help="platt: a logistic fit, two numbers (the usual case). isotonic: any monotone shape, but it "
                           "needs a few hundred relevant pairs.")
    ready = data_ready and backend is not None and spec is not None
    if st.button("Calibrate", type="primary", disabled=not ready, key="tune_calibrate") and ready:
        address, key = spec
        out = tune_folder(data).resolve() / f"calibration-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with st.spinner("Scoring the pairs and fitting the map (`python -m reranker calibrate`)…"):
                document = run_calibrate(folder, run_file, address, key, top_k, method, data.resolve() / JUDGEMENTS,
                                         out)
        except TuneCommandFailed as e:
            st.error(widgets.plain_markdown(in_their_words(str(e), folder, names)), title="The data cannot be used")
        else:
            st.session_state.tune_calibration = (str(out), document)

    shown = st.session_state.get("tune_calibration")
    if shown is not None:
        path, document = shown
        st.markdown(f"**{document['method']}** calibration of {widgets.plain_markdown(document['model'])} on "
                    f"{document['pairs']:,} pairs ({document['queries']:,} queries, {document['relevant_pairs']:,} "
                    f"relevant); {document['cross_validation']}.")
        st.dataframe(calibration_table(document), hide_index=True, key="tune_calibration_table",
                     column_config={c: st.column_config.NumberColumn(format="%.4f") for c in ("before", "after")})
        st.plotly_chart(reliability_figure(document), key="tune_reliability")
        st.caption("Each point a bin of predicted probability (its size: its pairs) against the fraction of its pairs "
                   "that are relevant; a calibrated model's lie on the diagonal.")
        row = st.container(horizontal=True)
        row.download_button("CAL.json", json.dumps(document, indent=1), "CAL.json", "application/json",
                            key="tune_cal_download", on_click="ignore")
        applied = st.session_state.get(frame.CALIBRATION) == path
        row.button("Applied to the model" if applied else "Apply to the model", key="tune_apply", disabled=applied,
                   on_click=apply_calibration, args=(path,), icon=":material/tune:",
                   help="Every page then scores with it: scores become P(relevant), rankings stay the same, and the "
                        f"model is named “… (calibrated {load_calibration(path).fingerprint})”.")
        if "`" not in path:
            st.caption(f"Saved as `{path}`; elsewhere: `--calibration {path}` on rank, batch and evaluate, "
                       f"`RERANKER_CALIBRATION={path}` for the API.")


@st.fragment(run_every=2.0)
def job_view() -> None:
    """The running or last fine-tuning: progress, loss curve, and at the end the before/after table."""
    job = current_job(data)
    if job is None:
        return
    log = job.log_text()
    steps = progress_lines(log)
    running = job.running
    evaluation = job.evaluation()
    st.markdown(f"**Fine-tuning {widgets.plain_markdown(job.base)}** on {widgets.plain_markdown(job.dataset)}")
    if running and steps:
        last = steps[-1]
        st.progress(last.step / max(1, last.steps),
                    text=f"epoch {last.epoch}/{last.epochs}, step {last.step:,}/{last.steps:,}, loss "
                         f"{last.loss:.4f}, about {last.seconds_left:,} s left")
    elif running:
        st.info("Preparing the pairs, or evaluating the held-out queries…", icon=":material/hourglass_top:")
    if steps or evaluation:
        st.plotly_chart(loss_figure(steps, evaluation), key="tune_loss")
    for line in said_lines(log):
        st.caption(widgets.plain_markdown(line))
    if running:
        return
    if evaluation is None or job.exit_code not in (0, None):
        message = error_of(log) or "it stopped without saying why (see its log: " + job.log + ")"
        st.error(widgets.plain_markdown(message), title="The fine-tuning did not finish")
        st.button("Dismiss", key="tune_dismiss", on_click=forget_job, args=(data,))
        return
    st.success(widgets.plain_markdown(f"Done: the tuned model is in {job.output}"), icon=":material/check_circle:")
    st.caption(f"{len(evaluation['held_out'])} held-out queries (never trained on), each one's first stage's top "
               f"{evaluation['top_k']} reranked by the base and the tuned model. ★: significant at 0.05.")
    st.dataframe(before_after_table(evaluation), hide_index=True, key="tune_before_after",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in ("base", "tuned", "change", "p (paired t)")})
    st.button("Use the tuned model", type="primary", key="tune_use", on_click=use_tuned, args=(job.output,),
              icon=":material/swap_horiz:", help="The sidebar's model becomes this folder, for every page; it is "
                                                 "listed wherever models are chosen.")


with finetune_tab:
    st.caption("LoRA on the labelled pairs: a seeded share of the queries is held out (never trained on), and at the "
               "end the base and the tuned model rerank them. Runs in the background under the data folder: leave "
               "the page or reload, it goes on.")
    address = spec[0] if spec else None
    base = model_and_dtype(address)[0] if address and not is_server(address) else None
    if address and base is None:
        st.info("Fine-tuning needs the model in this process (its weights): choose **In this process** in the "
                "sidebar.")
    left, middle, right = st.columns(3)
    epochs = int(left.number_input("Epochs", min_value=1, max_value=50, value=3, key="tune_epochs"))
    hold_out = float(middle.number_input("Held-out share", min_value=0.05, max_value=0.9, value=0.2, step=0.05,
                                         key="tune_hold_out"))
    rank = int(right.number_input("LoRA rank", min_value=1, max_value=256, value=8, key="tune_rank"))
    job = current_job(data)
    busy = job is not None and job.running
    ready = data_ready and base is not None and not busy
    if st.button("Start fine-tuning", type="primary", disabled=not ready, key="tune_start") and ready:
        arguments = ["--epochs", str(epochs), "--hold-out", str(hold_out), "--lora-rank", str(rank),
                     "--top-k", str(top_k)]
        if run_file is not None:
            arguments += ["--run", str(Path(run_file).resolve())]
        start_finetune(data, Path(folder).resolve(), base, arguments)
    job_view()
