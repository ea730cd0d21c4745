"""The same query and documents in 2 to 4 runs, each a model and an instruction: ranks side by side, how they
agree, label metrics, and each pair's scores against each other."""

from dataclasses import replace
from itertools import combinations

import streamlit as st

from reranker import Query
from reranker.analysis.ranking_metrics import metric_text
from reranker.core.prompt import resolve_instruction
from reranker.formats.documents import format_documents, parse_documents
from reranker.formats.exports import export_csv, export_json
from reranker.workbench import draft_panel, frame, widgets
from reranker.workbench.charts import bump_figure, scatter_figure
from reranker.workbench.comparison import (
    CompareRun,
    Comparison,
    agreement_table,
    best_text,
    metrics_table,
    rank_table,
)
from reranker.workbench.presets import CUSTOM, INSTRUCTION_PRESETS
from reranker.workbench.run_models import run_pickers
from reranker.workbench.saved_sessions import comparison_from_json, comparison_json
from reranker.workbench.scoring_steps import rank_in_steps

NAMES = ("A", "B", "C", "D")

# the inputs a reload brings back (workbench.drafts)
INPUTS = ("compare_query", "compare_documents", "compare_count", "compare_k", "compare_passage_tokens",
          *(f"compare_{n}_{part}" for n in NAMES for part in ("model", "model_other", "preset", "text")))


def show_last(body: str) -> None:
    st.session_state.comparison = comparison_from_json(body)


def open_past(body: str) -> None:
    """A past comparison back in the page: its result, and its query, documents and instructions in the inputs."""
    comparison = comparison_from_json(body)
    st.session_state.comparison = comparison
    st.session_state.compare_query = comparison.query
    st.session_state.compare_documents = format_documents(comparison.parsed.documents, comparison.parsed.labels)
    st.session_state.compare_count = len(comparison.runs)
    st.session_state.compare_passage_tokens = comparison.passage_tokens or 0
    for run in comparison.runs:
        preset = next((name for name, text in INSTRUCTION_PRESETS.items() if text == run.instruction), None)
        st.session_state[f"compare_{run.name}_preset"] = preset or CUSTOM
        if preset is None:
            st.session_state[f"compare_{run.name}_text"] = run.instruction


backend = frame.backend()
draft_panel.restore("compare", INPUTS, show_last)

st.title("Compare")
st.caption("One query, one set of documents, 2 to 4 runs, each a model and an instruction. Documents with a tab "
           "and a relevance label (0/1/2) at the end of each line also get NDCG, MRR and Hit@1 per run.")

widgets.sample_buttons("compare_query", "compare_documents")
query = st.text_input("Query", key="compare_query", persist_state="session")
widgets.broken_text_warning("query", query)
documents_text = st.text_area("Documents (one per line)", key="compare_documents", height=200,
                              persist_state="session",
                              placeholder="One candidate per line; optionally a tab and its relevance label (0/1/2).")
parsed = parse_documents(documents_text)
widgets.documents_summary(parsed, without_labels=" · no labels")
shown_comparison: Comparison | None = st.session_state.get("comparison")
if shown_comparison is not None and shown_comparison.parsed.documents == parsed.documents \
        and shown_comparison.parsed.labels != parsed.labels:  # labels edited in the box: no scoring needed
    st.session_state.comparison = replace(shown_comparison, parsed=parsed)

count = st.radio("Runs to compare", (2, 3, 4), horizontal=True, key="compare_count", persist_state="session")
chosen = run_pickers(NAMES[:count], "compare", backend)
k_column, passage_column = st.columns([1, 3])
st.session_state.setdefault("compare_k", 5)  # a default given here, not to the widget: a reload may restore it
k = int(k_column.number_input("k (for top-k overlap and NDCG@k)", min_value=1, max_value=100,
                              key="compare_k", persist_state="session"))
with passage_column:
    passages = widgets.passage_setting("compare_passage_tokens")
draft_panel.keep_inputs("compare", INPUTS)

ready = all(model is not None for model, _ in chosen)
compare = st.button("Compare", type="primary", disabled=not ready, key="compare")
widgets.cancel_notice("compare", "press Compare to score the rest.")
if compare and not query.strip():
    st.error("Type a query first.")
elif compare and parsed.count == 0:
    st.error("Paste at least one document, one per line.")
elif compare and ready:
    with widgets.scoring_errors_shown(), widgets.scoring_run("compare") as show_progress:
        ranked: dict[int, list] = {}
        for model in {id(m): m for m, _ in chosen}.values():  # each model scores its runs in shared passes
            mine = [i for i, (m, _) in enumerate(chosen) if m is model]
            answers = rank_in_steps(widgets.score_cache(), model,
                                    [Query(query, parsed.documents, chosen[i][1], passage_tokens=passages)
                                     for i in mine], show_progress)
            ranked.update(zip(mine, answers))
        runs = [CompareRun(NAMES[i], resolve_instruction(instruction), ranked[i], model.model_name,
                           model.capabilities.where) for i, (model, instruction) in enumerate(chosen)]
        comparison = Comparison(query, parsed, runs, passages)
        st.session_state.comparison = comparison
        draft_panel.keep_result("compare", draft_panel.title_of(
            query, parsed.count, " · ".join(dict.fromkeys(run.model.rstrip("/").rsplit("/", 1)[-1] for run in runs))),
            comparison_json(comparison, documents_text))

comparison: Comparison | None = st.session_state.get("comparison")
if comparison is None:
    st.info("Pick the models and instructions, then press **Compare**.")
    draft_panel.history("compare", "comparisons", open_past)
    st.stop()

st.divider()
if ready and not comparison.asked([(m.model_name, i) for m, i in chosen], query, parsed, passages):
    st.warning("The query, documents, models or instructions changed since this comparison, which still shows the "
               "old ones: press **Compare** to update it.", icon=":material/update:")
st.markdown(f"**Compared for the query:** {widgets.plain_markdown(comparison.query)}  \n"
            f"{widgets.counted(len(comparison.parsed.documents), 'document')}")
for run in comparison.runs:
    where = f" ({run.where})" if run.where else ""
    st.markdown(f"**{run.name}**: {widgets.plain_markdown(run.model + where)} · "
                f"{widgets.plain_markdown(run.instruction)}")
labels = comparison.parsed.labels

st.subheader("Ranks")
st.dataframe(rank_table(comparison.runs, comparison.parsed.documents, labels), hide_index=True, key="compare_ranks",
             column_config={"text": st.column_config.TextColumn("text", width="large"),
                            **{f"score {run.name}": st.column_config.NumberColumn(format="%.4f")
                               for run in comparison.runs}})

st.subheader("How documents move")
highlight = comparison.top_k_union(k) if len(comparison.parsed.documents) > 12 else []
st.plotly_chart(bump_figure({run.name: run.rank_of() for run in comparison.runs},
                            [f"#{i + 1}" for i in range(len(comparison.parsed.documents))],
                            [f"#{i + 1}: {d}" for i, d in enumerate(comparison.parsed.documents)], highlight),
                key="bump_chart")
if highlight:
    st.caption(f"Documents in some instruction's top {k} drawn bold; the rest faint.")

if len(comparison.parsed.documents) > 1:
    st.subheader("Scores against each other")
    names = {run.name: run for run in comparison.runs}
    pair = st.selectbox("Runs", [f"{a} vs {b}" for a, b in combinations(names, 2)], key="compare_scatter",
                        label_visibility="collapsed")
    a, b = (names[name] for name in pair.split(" vs "))
    st.plotly_chart(scatter_figure(a.name, a.logits(), b.name, b.logits(),
                                   [f"#{i + 1}: {d}" for i, d in enumerate(comparison.parsed.documents)]),
                    key="scatter_chart")
    st.caption("One point per document; on the dotted line both runs give it the same log-odds.")

st.subheader("Agreement")
st.dataframe(agreement_table(comparison.runs, k), hide_index=True, key="compare_agreement",
             column_config={"Kendall tau": st.column_config.NumberColumn(format="%.3f"),
                            f"top-{k} overlap": st.column_config.NumberColumn(format="%.2f")})
st.caption("Kendall tau: 1 = the same order, 0 = unrelated, −1 = reversed. "
           f"Top-{k} overlap: the share of the top {k} both runs have in common.")

if labels is not None:
    st.subheader("Against your labels")
    metrics = metrics_table(comparison.runs, labels, k)
    st.dataframe(metrics.assign(**{"Hit@1": [metric_text("Hit@1", v) for v in metrics["Hit@1"]]}),
                 hide_index=True, key="compare_metrics",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in metrics.columns[1:3]})
    st.success(best_text(metrics, k))

records = comparison.records()
widgets.download_buttons(export_csv(records), export_json(records), "compared", key="compare")
st.caption(f"Downloads hold every document in each of the {len(comparison.runs)} runs, best first within each; "
           "the model and instruction columns tell the runs apart.")
draft_panel.history("compare", "comparisons", open_past)
