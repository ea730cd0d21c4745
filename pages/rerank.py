"""Qwen-Ranker Pro: paste a query and candidate documents, get them reranked by Qwen3-Reranker.

Run with `./start.sh` (or `streamlit run app.py`). Left: the inputs; right: the ranking in three tabs.
"""

import streamlit as st

from reranker import rank_judgements
from reranker.csv_io import safe_csv_bytes
from reranker.documents import parse_documents
from reranker.ranking_metrics import label_metrics
from reranker.workbench import frame, widgets
from reranker.workbench.charts import decay_figure, find_cliff
from reranker.workbench.results import SCORE_MODES, Ranking, cards_html, results_frame, results_json, shown_value

backend = frame.backend()

st.title("Qwen-Ranker Pro")
st.caption("Paste a query and candidate documents; Qwen3-Reranker orders them by how likely it answers “yes”.")

controls, output = st.columns([2, 3], gap="large")

with controls:
    widgets.sample_buttons("query", "documents", "instruction_preset")
    query = st.text_input("Query", key="query", persist_state="session")
    instruction = widgets.instruction_picker("Instruction", key="instruction")
    documents_text = st.text_area(
        "Documents (one per line)", key="documents", height=240, persist_state="session",
        placeholder="One candidate per line. A tab and a digit (0/1/2) at the end of a line is its relevance label.")
    parsed = parse_documents(documents_text)
    widgets.documents_summary(parsed)
    top_k_column, mode_column = st.columns(2)
    top_k = int(top_k_column.number_input("Show top k", min_value=1, max_value=1000, value=10, key="top_k",
                                          persist_state="session"))
    score_mode = mode_column.radio("Score shown as", SCORE_MODES, horizontal=True, key="score_mode",
                                   persist_state="session")
    rerank = st.button("Rerank", type="primary", disabled=backend is None, key="rerank", width="stretch")
    if rerank and not query.strip():
        st.error("Type a query first.")
        rerank = False
    elif rerank and parsed.count == 0:
        st.error("Paste at least one document, one per line.")
        rerank = False

with output:
    if rerank and backend is not None:
        bar = st.progress(0.0, text=f"Scoring {parsed.count} documents…")
        with widgets.scoring_errors_shown():
            judgements = widgets.score_cache().judge(backend, query, parsed.documents, instruction,
                                                       widgets.progress_callback(bar, "documents"))
            st.session_state.ranking = Ranking(backend.model_name, query, instruction, parsed,
                                               rank_judgements(parsed.documents, judgements))
        bar.empty()
    ranking: Ranking | None = st.session_state.get("ranking")
    if ranking is None:
        st.info("Type a query and documents (or pick a sample), then press **Rerank**.")
        st.stop()
    if backend is not None and not ranking.asked(backend.model_name, query, instruction, parsed):
        st.caption("The inputs or the model changed since this ranking: press Rerank to update it.")
    labels = ranking.parsed.labels
    shown = ranking.ranked[:top_k]
    ranked_tab, table_tab, decay_tab = st.tabs(["Ranked", "Table", "Score decay"], key="result_tab", on_change="rerun")

    with ranked_tab:
        if labels is not None:
            metrics = label_metrics([labels[d.index] for d in ranking.ranked], top_k)
            for column, (name, value) in zip(st.columns(len(metrics)), metrics.items()):
                column.metric(name, f"{value:.3f}")
        st.html(cards_html(shown, score_mode, labels, ranking.parsed.duplicate_of))
        if len(ranking.ranked) > top_k:
            st.caption(f"Showing the top {top_k} of {len(ranking.ranked)}.")

    with table_tab:
        st.dataframe(
            results_frame(shown, labels), hide_index=True, key="results_table",
            column_config={
                "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.4f"),
                "log-odds": st.column_config.NumberColumn("log-odds", format="%+.3f"),
                "text": st.column_config.TextColumn("text", width="large"),
            })
        everything = results_frame(ranking.ranked, labels)
        csv_column, json_column = st.columns(2)
        csv_column.download_button("Download CSV", safe_csv_bytes(everything), "reranked.csv", "text/csv",
                                   key="download_csv", on_click="ignore", width="stretch")
        json_column.download_button(
            "Download JSON", results_json(ranking.ranked, ranking.query, ranking.instruction, ranking.model, labels),
            "reranked.json", "application/json", key="download_json", on_click="ignore", width="stretch")
        st.caption(f"Downloads hold all {len(ranking.ranked)} documents, best first.")

    with decay_tab:
        values = [shown_value(d, score_mode) for d in ranking.ranked]
        line_column, value_column = st.columns(2)
        with_threshold = line_column.checkbox("Threshold line", key="threshold_on", persist_state="session")
        threshold = value_column.number_input(
            f"Threshold ({score_mode.lower()})", value=0.5 if score_mode == "Probability" else 0.0, step=0.05,
            key=f"threshold_{score_mode}", disabled=not with_threshold, persist_state="session")
        st.plotly_chart(decay_figure(values, score_mode.lower(), threshold if with_threshold else None,
                                     [f"#{d.index + 1}: {d.document}" for d in ranking.ranked]),
                        key="decay_chart")
        cliff = find_cliff(values)
        if cliff is not None:
            top = "the top document stands" if cliff.after_rank == 1 else f"the top {cliff.after_rank} stand"
            st.caption(f"Largest drop: {cliff.drop:.3f} between rank {cliff.after_rank} and {cliff.after_rank + 1}: "
                       f"{top} apart from the rest.")
