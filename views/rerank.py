"""The Rerank page: the query, instruction and documents on the left; on the right their ranking as cards (each with
its Why?), a sortable table and the score-decay chart, and the panel that saves or shares it."""

from dataclasses import replace
from urllib.parse import urlsplit

import streamlit as st

from reranker import Query
from reranker.analysis.ranking_metrics import label_metrics, metric_text
from reranker.core.environment import API_KEY
from reranker.formats.exports import export_csv, export_json
from reranker.formats.retrieval import labelled_dataset_zip
from reranker.workbench import draft_panel, frame, session_panel, widgets
from reranker.workbench.charts import cliff_caption, decay_figure
from reranker.workbench.code_snippets import curl_command, python_code, rerank_body
from reranker.workbench.document_blocks import formatted_as, looks_like_blocks, parsed_as
from reranker.workbench.explanation_view import explanation_html, query_terms
from reranker.workbench.results import SCORE_MODES, Ranking, card_html, shown_value, table_frame
from reranker.workbench.saved_sessions import session_from_json, session_json
from reranker.workbench.scoring_steps import explain_in_steps, rank_in_steps

# the inputs a reload brings back (workbench.drafts)
INPUTS = ("query", "instruction_preset", "instruction_text", "passage_tokens", "documents", "documents_blocks")

backend = frame.backend()


def toggle_why(index: int) -> None:
    st.session_state.why_open = None if st.session_state.get("why_open") == index else index


def why_view(document: str) -> None:
    """A card's "Why?": each sentence shaded by how much it moves the score (computed once, then remembered)."""
    ranking: Ranking = st.session_state.ranking
    if backend is None or backend.model_name != ranking.model:
        st.info("Explaining needs the model that made this ranking; it is not the one in use now.")
        return
    with widgets.scoring_errors_shown(), widgets.scoring_run("why") as show_progress:
        spans = explain_in_steps(widgets.score_cache(), backend, ranking.query, document, ranking.instruction,
                                 show_progress)
        st.html(explanation_html(document, spans, query_terms(ranking.query)))


def set_label(index: int, key: str) -> None:
    """A card's label chosen: the ranking's labels follow (a document not marked counts as 0), and the documents
    box too, so the labels are kept with the inputs."""
    ranking: Ranking = st.session_state.ranking
    labels = list(ranking.parsed.labels or [0.0] * ranking.parsed.count)
    labels[index] = float(st.session_state.get(key) or 0)
    parsed = replace(ranking.parsed, labels=labels, labelled_lines=len(labels))
    st.session_state.ranking = replace(ranking, parsed=parsed)
    st.session_state.documents = formatted_as(parsed.documents, labels, ranking.blocks)


def api_address() -> tuple[str, bool, str] | None:
    """Where a program sends this page's requests (a Qwen-Ranker sidecar's /api/rerank), whether it wants a key, and
    the model it scores with; None where there is no such API (`streamlit run app.py` alone, a vLLM server, a
    Cohere-style API)."""
    api = frame.job_backend()  # the sidecar, or the model this workbench serves its API with
    if api is None:
        return None
    if api.capabilities.address is not None:
        return api.capabilities.address, True, api.model_name
    page = urlsplit(st.context.url if isinstance(st.context.url, str) else "http://localhost:8501")
    return f"{page.scheme}://{page.netloc}", bool(API_KEY.read()), api.model_name


def show_last(body: str) -> None:
    st.session_state.ranking = session_from_json(body).ranking


def open_past(body: str) -> None:
    session_panel.put_in_page(session_from_json(body))


if session_panel.restore_from_address():
    draft_panel.skip_restore("rerank")  # the saved session is what the page shows, not this browser's last work
else:
    draft_panel.restore("rerank", INPUTS, show_last)
st.title("Qwen-Ranker Pro")
st.caption("Paste a query and candidate documents; Qwen3-Reranker orders them by how likely it answers “yes”.")

controls, output = st.columns([2, 3], gap="large")
progress_place = output.container()  # the run's progress at the top of the results, in view however long the inputs

with controls:
    widgets.sample_buttons("query", "documents", "instruction_preset")
    query = st.text_input("Query", key="query", persist_state="session")
    widgets.broken_text_warning("query", query)
    instruction = widgets.instruction_picker("Instruction", key="instruction")
    passages = widgets.passage_setting("passage_tokens")
    blocks = bool(st.session_state.get("documents_blocks"))
    documents_text = st.text_area(
        "Documents (one per blank-line-separated block)" if blocks else "Documents (one per line)", key="documents",
        height=200, persist_state="session",
        placeholder="One candidate per block of lines, blocks apart by a blank line. A tab and a digit (0/1/2) at the "
                    "end of a block is its relevance label." if blocks else
                    "One candidate per line. A tab and a digit (0/1/2) at the end of a line is its relevance label.")
    blocks = st.toggle("Keep paragraphs together", key="documents_blocks",
                       persist_state="session",
                       help="Off: each line is a document. On: one document per blank-line-separated block, so a "
                            "document of several lines or paragraphs (for the long-documents setting) stays whole.")
    parsed = parsed_as(documents_text, blocks)
    if not blocks and looks_like_blocks(documents_text):
        st.caption(":material/info: This text has paragraphs of several lines apart by blank lines; each line is read "
                   "as a document. To keep each block whole, turn on **Keep paragraphs together** above.")
    widgets.documents_summary(parsed)
    shown_ranking: Ranking | None = st.session_state.get("ranking")
    if shown_ranking is not None and shown_ranking.parsed.documents == parsed.documents \
            and shown_ranking.parsed.labels != parsed.labels:  # labels edited in the box: no scoring needed
        st.session_state.ranking = replace(shown_ranking, parsed=parsed)
    draft_panel.keep_inputs("rerank", INPUTS)
    rerank = st.button("Rerank", type="primary", disabled=backend is None, key="rerank", width="stretch")
    if rerank and not query.strip():
        st.error("Type a query first.")
        rerank = False
    elif rerank and parsed.count == 0:
        st.error("Paste at least one document, one per line.")
        rerank = False
    widgets.cancel_notice("rerank", "press Rerank to score the rest.")
    if rerank and backend is not None:
        with widgets.scoring_errors_shown(), widgets.scoring_run("rerank", progress_place) as show_progress:
            asked = Query(query, parsed.documents, instruction, passage_tokens=passages)
            [ranked] = rank_in_steps(widgets.score_cache(), backend, [asked], show_progress, "documents")
            ranking = Ranking(backend.model_name, query, instruction, parsed, ranked, passages, blocks)
            st.session_state.ranking = ranking
            st.session_state.why_open = None
            draft_panel.keep_result("rerank", draft_panel.title_of(query, parsed.count, backend.model_name),
                                    session_json(ranking, documents_text))

with output:
    ranking: Ranking | None = st.session_state.get("ranking")
    if ranking is None:
        st.info("Type a query and documents (or pick a sample), then press **Rerank**.")
        session_panel.session_panel(None)
        draft_panel.history("rerank", "rankings", open_past)
        st.stop()
    session_panel.restored_note(ranking)
    if backend is not None and not ranking.asked(backend.model_name, query, instruction, parsed, passages):
        st.warning("The inputs or the model changed since this ranking, which still shows the old ones: press "
                   "**Rerank** to update it.", icon=":material/update:")
    top_k_column, mode_column, threshold_column = st.columns(3)
    top_k = int(top_k_column.number_input(
        "Cards shown (top k)", min_value=1, max_value=1000, value=10, key="top_k", persist_state="session",
        help="The table and downloads hold every document (that passes the threshold, when Only scores ≥ is ticked)."))
    score_mode = mode_column.radio("Score shown as", SCORE_MODES, horizontal=True, key="score_mode",
                                   persist_state="session", on_change=widgets.carry_threshold)
    st.session_state.setdefault(f"threshold_{score_mode}", 0.5 if score_mode == "Probability" else 0.0)
    threshold = threshold_column.number_input(f"Threshold ({score_mode.lower()})", step=0.05,
                                              key=f"threshold_{score_mode}", persist_state="session")
    only_above = threshold_column.checkbox(f"Only scores ≥ {threshold:g}", key="threshold_filter",
                                           persist_state="session", help="Applies to the cards, the table and the "
                                           "downloads; the Score decay tab can draw it as a line.")
    labels = ranking.parsed.labels
    kept = [d for d in ranking.ranked if shown_value(d, score_mode) >= threshold] if only_above else ranking.ranked
    shown = kept[:top_k]
    ranked_tab, table_tab, decay_tab = st.tabs(["Ranked", "Table", "Score decay"], key="result_tab", on_change="rerun")

    with ranked_tab:
        if labels is not None:
            metrics = label_metrics([labels[d.index] for d in ranking.ranked], top_k)
            for column, (name, value) in zip(st.columns(len(metrics)), metrics.items()):
                column.metric(name, metric_text(name, value))
        if only_above:
            st.caption(f"Only the {len(kept):,} of {len(ranking.ranked):,} documents with {score_mode.lower()} "
                       f"≥ {threshold:g}.")
        terms = query_terms(ranking.query)
        st.caption("Label a card 0 (not relevant), 1 (relevant) or 2 (highly relevant): NDCG, MRR and Hit@1 follow, "
                   "a card not marked counts as 0, and the Table tab's **Download labels for Evaluate** takes them "
                   "to the Evaluate page.")
        cards = st.container(gap="medium")  # cards apart; each card's own Why? close under it
        for doc in shown:
            card = cards.container(gap="xxsmall")
            card.html(card_html(doc, score_mode, labels[doc.index] if labels is not None else None,
                                ranking.parsed.duplicate_of.get(doc.index), terms))
            with card:
                if st.session_state.get("why_open") == doc.index and st.session_state.get("why_cancelled"):
                    st.session_state.why_open = None
                    widgets.cancel_notice("why", "press **Why this rank?** to go on.")
                opened = st.session_state.get("why_open") == doc.index
                row = st.container(horizontal=True, vertical_alignment="center", gap="small")
                row.button("Hide why" if opened else "Why this rank?", key=f"why_{doc.index}", type="tertiary",
                           icon=":material/psychology_alt:", on_click=toggle_why, args=(doc.index,))
                grade_key = f"grade_{id(ranking)}_{doc.index}"
                row.segmented_control("Label", [0, 1, 2], key=grade_key, label_visibility="collapsed",
                                      default=None if labels is None else round(labels[doc.index]),
                                      on_change=set_label, args=(doc.index, grade_key),
                                      help="Its relevance: 0 not relevant, 1 relevant, 2 highly relevant")
                if opened:
                    why_view(doc.document)
        if len(kept) > top_k:
            st.caption(f"Showing the top {top_k:,} of {len(kept):,}.")

    with table_tab:
        everyone = "All" if not only_above else f"The {len(kept):,} of"
        above = f" with {score_mode.lower()} ≥ {threshold:g}" if only_above else ""
        st.caption(f"{everyone} {widgets.counted(len(ranking.ranked), 'document')} for the query "
                   f"“{widgets.plain_markdown(ranking.query)}”{above}; click a column to sort.")
        st.dataframe(
            table_frame(kept, labels), hide_index=True, key="results_table",
            column_config={
                "rank": st.column_config.NumberColumn("rank", width=50),
                "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.4f",
                                                         width=105),
                "log-odds": st.column_config.NumberColumn("log-odds", format="%+.3f", width=70),
                "input #": st.column_config.NumberColumn("input #", width=60),
                "tokens": st.column_config.NumberColumn("tokens", width=60),
                "text": st.column_config.TextColumn("text", width=420, help="The document; hover a cell for all "
                                                    "of it"),
            })
        records = ranking.records(kept)
        widgets.download_buttons(export_csv(records), export_json(records), "reranked", key="download")
        st.caption(f"Downloads hold the {widgets.counted(len(kept), 'document')} of the table, best first, with the "
                   "query, instruction and model on each row.")
        if labels is not None:
            st.download_button("Download labels for Evaluate", labelled_dataset_zip(
                ranking.query, ranking.parsed.documents, labels), "labelled.zip", "application/zip",
                key="download_labels", on_click="ignore", icon=":material/download:",
                help="The query, the documents and their labels as a BEIR folder, with the documents' given order "
                     "as the first stage: open it on the Evaluate page (My own files) to see whether the reranking "
                     "beats that order.")

    with decay_tab:
        values = [shown_value(d, score_mode) for d in ranking.ranked]
        with_threshold = st.checkbox(f"Threshold line at {threshold:g} (set above the tabs)", key="threshold_on",
                                     persist_state="session")
        st.plotly_chart(decay_figure(values, score_mode.lower(), threshold if with_threshold else None,
                                     [f"#{d.index + 1}: {d.document}" for d in ranking.ranked]),
                        key="decay_chart")
        caption = cliff_caption(values)
        if caption:
            st.caption(caption)

    session_panel.session_panel(ranking)
    address = api_address()
    if address is not None:
        with st.expander("Send this request from code", icon=":material/code:"):
            body = rerank_body(ranking.query, ranking.parsed.documents, ranking.instruction, ranking.passage_tokens)
            st.caption(f"The same request to {widgets.plain_markdown(address[0])}'s API; "
                       + (r"the key is read from RERANKER\_API\_KEY." if address[1] else "it wants no key.")
                       + ("" if address[2] == ranking.model else widgets.plain_markdown(
                           f" It scores with {address[2]}, the model the API serves, not {ranking.model}: its "
                           "scores can differ a little from these.")))
            st.code(curl_command(address[0], body, address[1]), language="bash")
            st.code(python_code(address[0], body, address[1]), language="python")
    draft_panel.history("rerank", "rankings", open_past)
