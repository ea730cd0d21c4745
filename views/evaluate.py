"""Does reranking improve a first stage's ranking on labelled queries, with which model and instruction, and is the
gain real? The same evaluation as `python -m reranker evaluate` (docs/EVALUATE.md), from uploads or the sample:
before and after with significance, each query's win or loss, the scores of relevant and other documents, and the
threshold to pick."""

import json
import tempfile
from contextlib import closing
from pathlib import Path

import streamlit as st

from reranker.analysis.dense_retrieval import FirstStage, allowed_memory, first_stage_maker
from reranker.analysis.evaluation import (
    PRECISION_TARGET,
    best_f1,
    coverage_text,
    for_precision,
    load_evaluation,
    measure,
    metrics_document,
    parse_measures,
    threshold_table,
)
from reranker.analysis.evaluation_runs import check_depths, rerank_at_depths
from reranker.analysis.judgement_store import JudgementStore
from reranker.core.failures import RerankerError
from reranker.formats.retrieval import DatasetError, run_text
from reranker.workbench import draft_panel, frame, widgets
from reranker.workbench.dataset_upload import SAMPLE, uploaded_dataset
from reranker.workbench.depth_view import depth_figure, depth_table, parse_depths, run_curves, suggestion_text
from reranker.workbench.evaluation_view import (
    EvaluationShown,
    comparison_table,
    evaluation_from_json,
    evaluation_json,
    in_their_words,
    metrics_csv,
    query_rankings,
    runs_compared_table,
    score_distribution_figure,
    threshold_figure,
    threshold_frame,
    threshold_json,
    wins_losses_figure,
)
from reranker.workbench.run_models import run_pickers
from reranker.workbench.saved_sessions import data_folder
from reranker.workbench.scoring_steps import judge_in_steps

NAMES = ("A", "B", "C")
SAMPLE_CHOICE = "The sample: 30 queries, English and Chinese"
UPLOAD_CHOICE = "My own files"
STAGES = {"run": "The run given", "bm25": "BM25 over the corpus", "dense": "Dense (an embedding model)",
          "hybrid": "Hybrid: BM25 + dense (RRF)"}
# the inputs a reload brings back (workbench.drafts); uploads are not kept, the last result is
INPUTS = ("eval_source", "eval_stage", "eval_embedder", "eval_top_k", "eval_depths", "eval_count", "eval_target",
          *(f"eval_{n}_{part}" for n in NAMES for part in ("model", "model_other", "preset", "text")))
JUDGEMENTS = "judgements.sqlite3"
"""The judgement store in the data folder (the evaluate command's too): a pair judged once is never judged again."""


def show_last(body: str) -> None:
    try:
        st.session_state.evaluation = evaluation_from_json(body)
    except ValueError:
        pass  # written by another version: evaluated again on demand


backend = frame.backend()
draft_panel.restore("evaluate", INPUTS, show_last)

st.title("Evaluate")
st.caption("On labelled queries: does reranking the first stage's top K improve the ranking, with which model and "
           "instruction, and is the gain real? Measured with trec_eval's definitions; the same as "
           "`python -m reranker evaluate`.")

source = st.radio("Data", [SAMPLE_CHOICE, UPLOAD_CHOICE], horizontal=True, key="eval_source", persist_state="session")
names: dict[str, str] = {}
data_ready = True
if source == SAMPLE_CHOICE:
    folder, run_file, data_key = SAMPLE, SAMPLE / "bm25.trec", "sample"
    st.caption("The sample was written for this project (assets/eval_sample, with a BM25 run). With random or tiny "
               "weights the figures mean nothing: real evaluation needs the real weights.")
else:
    if "eval_folder" not in st.session_state:
        st.session_state.eval_folder = tempfile.mkdtemp(prefix="reranker-evaluate-")
    uploaded = uploaded_dataset("eval_files", lambda digest: Path(st.session_state.eval_folder) / digest[:16])
    folder, run_file, data_ready, names = uploaded.folder, uploaded.run_file, uploaded.ready, uploaded.names
    data_key = "uploads " + uploaded.digest
    if names:
        st.caption("Files: " + widgets.plain_markdown(", ".join(f"{given} as {saved}"
                                                                 for saved, given in names.items())))
stage_kind = st.radio("First stage", list(STAGES), format_func=STAGES.get, horizontal=True, key="eval_stage",
                      persist_state="session", help="What ranks the corpus before the reranker: the run given (the "
                      "sample's BM25 run, or your .trec), BM25 made here, an embedding model's exact cosine search, "
                      "or both fused by reciprocal rank fusion. The same as the command's --first-stage.")
stage = FirstStage()
if stage_kind in ("dense", "hybrid"):
    embedder = st.text_input("Embedding model (a sentence-transformers model's hub id or folder)",
                             key="eval_embedder", persist_state="session",
                             placeholder="Qwen/Qwen3-Embedding-0.6B or BAAI/bge-small-zh-v1.5")
    if embedder.strip():
        stage = FirstStage(stage_kind, embedder.strip())
    else:
        st.info("Type an embedding model to make a dense first stage.", icon=":material/edit:")
        data_ready = False
    st.caption("The corpus is embedded once and kept (embeddings/ in the data folder); every document is compared "
               "with each query (exact search).")
use_run = stage_kind == "run" and run_file is not None
if data_ready and stage_kind == "run" and run_file is None:
    st.caption("No run given: BM25 over the corpus makes the first stage (words, and character bigrams for Chinese).")

top_column, depth_column, count_column = st.columns(3)
st.session_state.setdefault("eval_top_k", 10)  # a default given here, not to the widget: a reload may restore it
top_k = int(top_column.number_input("Rerank each query's top K", min_value=1, max_value=1000,
                                    key="eval_top_k", persist_state="session"))
depths_text = depth_column.text_input("Depth sweep: also K =", key="eval_depths", persist_state="session",
                                      placeholder="e.g. 20,50,100",
                                      help="Other depths to evaluate, separated by commas: the deepest is scored "
                                           "once and every depth read from its scores, drawn as a curve.")
try:
    depths = parse_depths(depths_text, top_k)
except RerankerError as e:
    depth_column.error(widgets.plain_markdown(str(e)))
    depths, data_ready = [top_k], False
count = count_column.radio("Runs", (1, 2, 3), horizontal=True, key="eval_count", persist_state="session",
                           help="Each run is a model and an instruction; they are compared with the first stage and "
                                "with each other.")
chosen = run_pickers(NAMES[:count], "eval", backend)
draft_panel.keep_inputs("evaluate", INPUTS)
asked = json.dumps([data_key, depths, use_run or stage.text(),
                    [(m.model_name if m is not None else None, i) for m, i in chosen]], ensure_ascii=False)

ready = data_ready and all(model is not None for model, _ in chosen)
pressed = st.button("Evaluate", type="primary", disabled=not ready, key="evaluate")
widgets.cancel_notice("evaluate", "press Evaluate to score the rest.")
if pressed and ready:
    try:
        from reranker.engine.embeddings import EmbeddingModel
        from reranker.engine.memory import available_bytes

        with st.spinner("Making the first stage" if stage.kind == "bm25" else f"Embedding with {stage.model}"):
            maker = first_stage_maker(stage, data_folder() / "embeddings", EmbeddingModel,
                                      allowed_memory(available_bytes()))
            dataset, first, texts = load_evaluation(folder, run_file if use_run else None, max(depths),
                                                    first_stage=maker)
        if len(depths) > 1:
            check_depths(first, depths, "the run given" if use_run else stage.text(), asked="K")
    except DatasetError as e:
        st.error(widgets.plain_markdown(in_their_words(str(e), folder, names)), title="The data cannot be used")
        st.stop()
    except (RerankerError, OSError, ValueError) as e:
        st.error(widgets.plain_markdown(str(e)), title="The first stage cannot be made; nothing was scored")
        st.stop()
    measures = parse_measures([])
    before = measure(dataset.qrels, first, measures, dataset.queries)
    with (widgets.scoring_errors_shown(), widgets.scoring_run("evaluate") as show_progress,
          closing(JudgementStore(data_folder() / JUDGEMENTS)) as store):
        def judge(model, queries, _progress):
            return judge_in_steps(store, model, queries, show_progress)

        results = []
        for model, instruction in chosen:
            for result in rerank_at_depths(model, store, judge, first, dataset.queries, texts, depths, instruction):
                result.per_query = measure(dataset.qrels, result.run, measures, dataset.queries)
                results.append(result)
        document = metrics_document("sample" if source == SAMPLE_CHOICE else ", ".join(names.values()),
                                    str(names.get("run.trec", "bm25.trec")) if use_run else stage.text(),
                                    chosen[0][0].model_name, top_k, first, before, results, dataset.qrels)
        judged = sum(len(docs) for result in results if result.top_k == max(depths)
                     for docs in result.judged.values())
        st.session_state.evaluation_scored = (store.pairs_scored, judged)
        at_top_k = [result for result in results if result.top_k == top_k]
        shown = EvaluationShown(document, first, at_top_k, dataset.qrels, dataset.queries,
                                {d: t for result in results for docs in result.judged.values() for d in docs
                                 if (t := texts.get(d)) is not None}, list(NAMES[:len(at_top_k)]), asked,
                                first_made_here=not use_run)
        st.session_state.evaluation = shown
        draft_panel.keep_result("evaluate", draft_panel.title_of(
            document["dataset"], len(dataset.queries), shown.document["model"]), evaluation_json(shown))

shown: EvaluationShown | None = st.session_state.get("evaluation")
if shown is None:
    st.info("Choose the data, K and the runs, then press **Evaluate**.")
    st.stop()

document = shown.document
st.divider()
if shown.asked != asked:
    st.warning("The data, K or the runs changed since this evaluation (the first stage counts as the data), which "
               "still shows the old ones: press **Evaluate** to update it."
               + ("" if data_ready else " (Upload the files to evaluate them.)"),
               icon=":material/update:")
st.subheader("Before and after")
scored = st.session_state.get("evaluation_scored")
if scored is not None and shown is st.session_state.get("evaluation"):
    st.caption(f"{scored[0]:,} of {scored[1]:,} pairs scored now; the rest came from the judgement store "
               f"({JUDGEMENTS} in the data folder), where every pair judged is kept.")
st.caption(f"{coverage_text(document)}; each one's top {document['top_k']} of the first stage "
           f"({widgets.plain_markdown(document['first_stage'])}) reranked. ★: the change is significant at 0.05 "
           "(paired t-test over the queries).")
for name, run in zip(shown.names, document["instructions"]):
    st.markdown(f"**{name}**: {widgets.plain_markdown(run['model'])} · {widgets.plain_markdown(run['instruction'])}")
st.dataframe(comparison_table(document, shown.names), hide_index=True, key="eval_table")
if len(shown.names) > 1:
    st.markdown("**The runs against each other**")
    st.caption("Each pair of runs on the same queries: the difference of their means and its paired t-test. ★: "
               "significant at 0.05.")
    st.dataframe(runs_compared_table(shown.reranked, shown.names), hide_index=True, key="eval_runs_table")

if len(document.get("top_ks", [])) > 1:
    st.subheader("How deep")
    curves = run_curves(document, shown.names)
    st.caption("nDCG@10 after reranking each query's top K, against K; dashed: the first stage's recall at K, the "
               "ceiling no reranker passes; below, the measured seconds per query on this backend (none where the "
               "pairs came from the judgement store). ★: the suggested K.")
    st.plotly_chart(depth_figure(curves), key="eval_depth_curve")
    st.markdown(suggestion_text(curves))
    with st.expander("Every depth"):
        st.dataframe(depth_table(curves), hide_index=True, key="eval_depth_table")

st.subheader("Query by query")
pick_column, measure_column = st.columns(2)
picked = pick_column.selectbox("Run", shown.names, key="eval_run_pick") if len(shown.names) > 1 else shown.names[0]
result = shown.reranked[shown.names.index(picked)]
measure_name = measure_column.selectbox("Measure", list(document["before"]), key="eval_measure")
before_pq, after_pq = document["per_query"]["before"][measure_name], result.per_query[measure_name]
st.plotly_chart(wins_losses_figure(before_pq, after_pq, measure_name, shown.queries), key="eval_wins")
gains = sum(after_pq[q] > before_pq[q] for q in after_pq if q in before_pq)
losses = sum(after_pq[q] < before_pq[q] for q in after_pq if q in before_pq)
st.caption(f"{widgets.counted(gains, 'query', 'queries')} gained, {losses:,} lost, "
           f"{len(after_pq) - gains - losses:,} unchanged.")
change = {q: after_pq[q] - before_pq.get(q, 0.0) for q in after_pq}
qid = st.selectbox("Open a query", sorted(change, key=lambda q: (change[q], q)), key="eval_query",
                   format_func=lambda q: f"{change[q]:+.3f} · {q}: {shown.queries.get(q, '')}")
st.caption(f"Its first stage's top {document['top_k']} (what was reranked) before and after.")
st.dataframe(query_rankings(shown, result, qid, document["top_k"]), hide_index=True, key="eval_query_table",
             column_config={"before: document": st.column_config.TextColumn(width="medium"),
                            "after: document": st.column_config.TextColumn(width="medium"),
                            "after: score": st.column_config.NumberColumn(format="%.4f")})

st.subheader("Scores of relevant and other documents")
st.plotly_chart(score_distribution_figure(result.judged, shown.qrels), key="eval_distribution")

st.subheader("Threshold")
rows = threshold_table(result.judged, shown.qrels)
st.session_state.setdefault("eval_target", PRECISION_TARGET)
target = st.number_input("Target precision", min_value=0.0, max_value=1.0, step=0.05,
                         key="eval_target", persist_state="session")
chosen_row, best = for_precision(rows, target), best_f1(rows)
if best is not None:
    st.markdown(f"**Best F1**: P(yes) ≥ {best.threshold:.4g} (log-odds ≥ {best.logit:+.2f}): precision "
                f"{best.precision:.3f}, recall {best.recall:.3f}, F1 {best.f1:.3f}.")
if chosen_row is not None:
    st.markdown(f"**Precision ≥ {target:g}**: P(yes) ≥ {chosen_row.threshold:.4g} (log-odds ≥ "
                f"{chosen_row.logit:+.2f}) keeps recall {chosen_row.recall:.3f}.")
else:
    st.warning(f"No threshold reaches a precision of {target:g} on these labels.")
st.plotly_chart(threshold_figure(rows, chosen_row or best), key="eval_threshold")
with st.expander("Every threshold"):
    st.dataframe(threshold_frame(rows), hide_index=True, key="eval_threshold_table")

st.subheader("Downloads")
run_entry = document["instructions"][shown.names.index(picked)]
downloads = st.container(horizontal=True)
downloads.download_button(f"Run {picked} (TREC)", run_text(result.run, "qwen3-reranker"), f"reranked-{picked}.trec",
                          "text/plain", key="eval_run_download", on_click="ignore")
if shown.first_made_here:
    downloads.download_button("First stage (TREC)", run_text(shown.first, "first-stage"), "first-stage.trec",
                              "text/plain", key="eval_first_download", on_click="ignore")
downloads.download_button("Metrics (JSON)", json.dumps(document, ensure_ascii=False, indent=1), "metrics.json",
                          "application/json", key="eval_json", on_click="ignore")
downloads.download_button("Metrics (CSV)", metrics_csv(document, shown.names), "metrics.csv", "text/csv",
                          key="eval_csv", on_click="ignore")
downloads.download_button("Threshold (JSON)", threshold_json(run_entry, chosen_row, target), "threshold.json",
                          "application/json", key="eval_threshold_json", on_click="ignore")
