"""Streamlit widgets the pages share: instruction and sample pickers, document counts, progress, error panels."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from reranker.analysis.judgement_store import JudgementStore
from reranker.analysis.ranking_metrics import metric_text
from reranker.core.failures import RerankerError
from reranker.formats.documents import ParsedDocuments, format_documents
from reranker.workbench.batch_scoring import overall_metrics
from reranker.workbench.broken_text import REPLACEMENT, broken_text_note
from reranker.workbench.presets import CUSTOM, INSTRUCTION_PRESETS, load_sample_sets
from reranker.workbench.scoring_steps import ScoringProgress


def score_cache() -> JudgementStore:
    """This browser session's judgements, in memory (analysis/judgement_store.py): a pair is scored once."""
    if "score_cache" not in st.session_state:
        st.session_state.score_cache = JudgementStore.in_memory()
    return st.session_state.score_cache


def instruction_picker(label: str, key: str, preset: str = "General web search") -> str:
    """A preset or free text; returns the instruction ("" means the default)."""
    names = [*INSTRUCTION_PRESETS, CUSTOM]
    if f"{key}_preset" not in st.session_state:
        st.session_state[f"{key}_preset"] = preset
    choice = st.selectbox(label, names, key=f"{key}_preset", persist_state="session")
    if choice == CUSTOM:
        text = st.text_area(f"{label}: your own text", key=f"{key}_text", height=80, persist_state="session",
                            placeholder="Blank means the default web-search instruction").strip()
        broken_text_warning(label, text)
        return text
    st.caption(plain_markdown(INSTRUCTION_PRESETS[choice]))
    return INSTRUCTION_PRESETS[choice]


def broken_text_warning(what: str, text: str) -> None:
    """A warning under an input that holds a character the browser could not send (workbench.broken_text)."""
    note = broken_text_note(what, text)
    if note is not None:
        st.warning(plain_markdown(note), icon=":material/warning:")


def passage_setting(key: str) -> int | None:
    """The long-documents setting: read each document as passages of N tokens, the best standing for it (None: each
    document whole, cut to the model's window when longer)."""
    tokens = st.number_input("Long documents: passages of N tokens (0: each document whole)", min_value=0,
                             max_value=8192, step=128, key=key, persist_state="session",
                             help="A document longer than N tokens is read as passages (cut at sentence ends), "
                                  "each scored alone; its best passage scores for it and is marked on its card. "
                                  "Nothing is cut away, and the cost grows with the length, not its square.")
    return int(tokens) or None


def sample_buttons(query_key: str, documents_key: str, preset_key: str | None = None) -> None:
    """One button per sample set in assets/samples; a click fills the query, documents (with labels), preset."""
    samples = load_sample_sets()
    if not samples:
        return
    st.caption("Samples, one click away")
    row = st.container(horizontal=True, wrap=True, gap="small")
    for sample in samples:
        def fill(sample=sample) -> None:
            st.session_state[query_key] = sample.query
            st.session_state[documents_key] = format_documents(sample.documents, sample.labels)
            if f"{documents_key}_blocks" in st.session_state:  # a sample is one document per line
                st.session_state[f"{documents_key}_blocks"] = False
            if preset_key is not None:
                st.session_state[preset_key] = sample.preset
        row.button(sample.name, on_click=fill, key=f"sample_{documents_key}_{sample.name}", type="tertiary",
                   icon=":material/description:")


def documents_summary(parsed: ParsedDocuments, without_labels: str = "") -> None:
    """The count under a documents box, and why duplicates, labels or unreadable characters need a look."""
    labels = " · with relevance labels" if parsed.labels is not None else without_labels
    st.caption(f"{parsed.count:,} document{'' if parsed.count == 1 else 's'}{labels}")
    broken = [i + 1 for i, d in enumerate(parsed.documents) if REPLACEMENT in d]
    if broken:
        shown = ", ".join(f"#{n}" for n in broken[:10]) + (" and more" if len(broken) > 10 else "")
        broken_text_warning(f"document{'s' if len(broken) > 1 else ''} {shown}", "".join(
            parsed.documents[n - 1] for n in broken))
    for note in parsed.warnings():
        st.warning(plain_markdown(note))


@contextmanager
def scoring_run(name: str, where: DeltaGenerator | None = None) -> Iterator[Callable[[ScoringProgress], None]]:
    """A progress bar (done, elapsed, time left) and a Cancel button where this is called (or in `where`, a place
    kept in view), for the run `name`; yields the progress callback for scoring_steps.judge_in_steps.

    Cancel makes Streamlit stop this script at its next progress update and run the page again; what was scored
    (the passes, or the steps, done) stays in the score cache; cancel_notice(name) then says how far it got."""
    area = (where or st).empty()
    with area.container():
        bar = st.progress(0.0, text="Starting…")
        st.button("Cancel", key=f"{name}_cancel", on_click=_cancelled, args=(name,), icon=":material/stop_circle:")

    def show(progress: ScoringProgress) -> None:
        st.session_state[f"{name}_progress"] = progress
        bar.progress(progress.fraction, text=progress.text())

    try:
        yield show
    finally:
        area.empty()


def _cancelled(name: str) -> None:
    st.session_state[f"{name}_cancelled"] = True


def cancel_notice(name: str, next_step: str) -> None:
    """After the run `name` was cancelled: how far it got, and that what was scored is kept."""
    if not st.session_state.pop(f"{name}_cancelled", False):
        return
    progress: ScoringProgress | None = st.session_state.get(f"{name}_progress")
    if progress is None or progress.done >= progress.total:
        return
    st.warning(f"Cancelled after {progress.done:,} of {progress.total:,} {progress.unit}. "
               f"Those scores are kept: {next_step}", icon=":material/stop_circle:")


@contextmanager
def scoring_errors_shown() -> Iterator[None]:
    """A scoring run that fails (out of memory, a bad text) says so on the page instead of a traceback."""
    try:
        yield
    except RerankerError as e:
        st.error(plain_markdown(str(e)), title="The server could not score; nothing was changed")
    except (RuntimeError, ValueError, TypeError, MemoryError) as e:
        st.error(plain_markdown(f"{type(e).__name__}: {e}"), title="Scoring failed; nothing was changed")


def download_buttons(csv: str | bytes, json: str | bytes, filename: str, key: str, scored: int | None = None) -> None:
    """A page's results as CSV and JSON, two buttons side by side: `filename` without its extension, `key` the
    buttons' key without its `_csv` / `_json`; `scored`: how many pairs a partial result holds, said on the buttons."""
    csv_column, json_column = st.columns(2)
    for column, data, kind, mime in ((csv_column, csv, "CSV", "text/csv"),
                                     (json_column, json, "JSON", "application/json")):
        label = f"Download {kind}" if scored is None else f"Download the {scored:,} scored ({kind})"
        column.download_button(label, data, f"{filename}.{kind.lower()}", mime, key=f"{key}_{kind.lower()}",
                               on_click="ignore", width="stretch", icon=":material/download:")


def metrics_view(per_query: pd.DataFrame, key: str) -> None:
    """Each label metric's mean over the labelled queries, then the table of each query's (batch_metrics)."""
    overall = overall_metrics(per_query)
    for column, (name, value) in zip(st.columns(len(overall)), overall.items()):
        column.metric(f"{name} (mean of {counted(len(per_query), 'query', 'queries')})",
                      metric_text(name, value, len(per_query)))
    st.dataframe(per_query, hide_index=True, key=key,
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in per_query.columns[3:]})


def carry_threshold() -> None:
    """When the score is shown the other way, the threshold follows: probability p is log-odds log(p / (1 - p))."""
    mode = st.session_state.get("score_mode")
    if mode == "Log-odds" and "threshold_Probability" in st.session_state:
        p = min(max(float(st.session_state["threshold_Probability"]), 1e-6), 1 - 1e-6)
        st.session_state["threshold_Log-odds"] = round(math.log(p / (1 - p)), 3)
    elif mode == "Probability" and "threshold_Log-odds" in st.session_state:
        logit = float(st.session_state["threshold_Log-odds"])
        st.session_state["threshold_Probability"] = round(1 / (1 + math.exp(-logit)), 4)


def counted(count: int, thing: str, things: str | None = None) -> str:
    """'1 pair', '2 pairs', '1 query', '3 queries' (`things`: the plural, when not `thing` + s)."""
    return f"{count:,} {thing if count == 1 else things or thing + 's'}"


def plain_markdown(text: str) -> str:
    """Text for Streamlit's markdown widgets that shows exactly as typed: every ASCII punctuation escaped."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)
