"""The Streamlit parts every page shares: page set-up, the engine in the sidebar, the score cache, pickers.

Pages import this; everything that is not Streamlit lives in reranker/ where plain tests reach it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from reranker import KNOWN_MODELS, ModelLoadError, Qwen3Reranker
from reranker.documents import ParsedDocuments, format_documents
from reranker.loading import resolve_model
from reranker.presets import CUSTOM, INSTRUCTION_PRESETS, load_sample_sets
from reranker.score_cache import ScoreCache
from reranker.sidecar.client import SidecarClient, SidecarError

ASSETS = Path(__file__).resolve().parent / "assets"
OTHER_MODEL = "Local folder or other id"
T = TypeVar("T")
_SHORT_NAMES = {name: name.rsplit("-", 1)[-1] for name in KNOWN_MODELS}


def page_setup(title: str) -> None:
    st.set_page_config(page_title=f"{title} · Qwen-Ranker Pro", page_icon=str(ASSETS / "logo.svg"), layout="wide")
    st.logo(str(ASSETS / "logo.svg"))
    with st.sidebar:
        st.page_link("app.py", label="Rerank", icon=":material/sort:")
        st.page_link("pages/1_Compare_instructions.py", label="Compare instructions", icon=":material/compare_arrows:")
        st.page_link("pages/2_CSV_batches.py", label="CSV batches", icon=":material/table:")
    st.html(f"<style>{(ASSETS / 'style.css').read_text(encoding='utf-8')}</style>")


@st.cache_resource(show_spinner=False, max_entries=2)
def load_engine(model: str) -> Qwen3Reranker:
    """One engine per model name per process, shared by every session and page."""
    return Qwen3Reranker(model=model)


def engine_sidebar() -> Qwen3Reranker | None:
    """The sidebar's model choice and engine status; the engine, or None after showing why it cannot load."""
    default = resolve_model(None)
    options = [*KNOWN_MODELS, OTHER_MODEL]
    with st.sidebar:
        st.subheader("Engine")
        choice = st.selectbox("Model", options, index=options.index(default) if default in KNOWN_MODELS else 3,
                              format_func=lambda m: f"Qwen3-Reranker {_SHORT_NAMES[m]}" if m in _SHORT_NAMES else m,
                              key="model_choice", persist_state="session",
                              help="4B and 8B want a GPU; a local folder holds config.json, tokenizer and weights.")
        if choice == OTHER_MODEL:
            model = st.text_input("Model folder or hub id", value=default if default not in KNOWN_MODELS else "",
                                  key="model_folder", persist_state="session").strip()
        else:
            model = choice
        status = st.empty()
    if not model:
        status.info("Type a model folder or hub id.")
        return None
    try:
        with status, st.spinner(f"Loading {plain_markdown(model)} (the first load of a hub model downloads it)…"):
            engine = load_engine(model)
    except Exception as e:  # noqa: BLE001 - whatever stops the model loading is shown as a message, not a traceback
        status.error("Engine not loaded")
        message = str(e) if isinstance(e, ModelLoadError) else f"{type(e).__name__}: {e}"
        st.error(plain_markdown(message), title="The reranker model could not be loaded")
        return None
    info = engine.describe()
    status.success(
        f"**Engine ready**  \nmodel: {plain_markdown(str(info['model']))}  \ndevice: {info['device']} · "
        f"dtype: {info['dtype']}  \nloaded in {info['load_seconds']} s · max {info['max_length']} tokens")
    return engine


def score_cache() -> ScoreCache:
    """This session's judgements per (model, instruction, query, document)."""
    if "score_cache" not in st.session_state:
        st.session_state.score_cache = ScoreCache()
    return st.session_state.score_cache


def instruction_picker(label: str, key: str, preset: str = "General web search") -> str:
    """A preset or free text; returns the instruction ("" means the default)."""
    names = [*INSTRUCTION_PRESETS, CUSTOM]
    if f"{key}_preset" not in st.session_state:
        st.session_state[f"{key}_preset"] = preset
    choice = st.selectbox(label, names, key=f"{key}_preset", persist_state="session")
    if choice == CUSTOM:
        return st.text_area(f"{label}: your own text", key=f"{key}_text", height=80, persist_state="session",
                            placeholder="Blank means the default web-search instruction").strip()
    st.caption(plain_markdown(INSTRUCTION_PRESETS[choice]))
    return INSTRUCTION_PRESETS[choice]


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
            if preset_key is not None:
                st.session_state[preset_key] = sample.preset
        row.button(sample.name, on_click=fill, key=f"sample_{documents_key}_{sample.name}", type="tertiary",
                   icon=":material/description:")


def documents_summary(parsed: ParsedDocuments, without_labels: str = "") -> None:
    """The count under a documents box, and why duplicates or labels need a look."""
    labels = " · with relevance labels" if parsed.labels is not None else without_labels
    st.caption(f"{parsed.count} document{'' if parsed.count == 1 else 's'}{labels}")
    for note in parsed.warnings():
        st.warning(plain_markdown(note))


def progress_callback(bar: DeltaGenerator, what: str = "pairs") -> Callable[[int, int], None]:
    """An engine progress callback that moves `bar` (an st.progress)."""
    def report(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Scoring {done:,} / {total:,} {what}")
    return report


@contextmanager
def scoring_errors_shown() -> Iterator[None]:
    """A scoring run that fails (out of memory, a bad text) says so on the page instead of a traceback."""
    try:
        yield
    except (RuntimeError, ValueError, TypeError, MemoryError) as e:
        st.error(plain_markdown(f"{type(e).__name__}: {e}"), title="Scoring failed; nothing was changed")


def sidecar_job_panel(sidecar: SidecarClient, job_id: str) -> None:
    """A sidecar job: its progress while it runs (polled without blocking the page), then its CSV or its error."""
    if st.session_state.get("sidecar_finished") != job_id:
        _job_progress(sidecar, job_id)
        return
    job = _sidecar_call(sidecar.job, job_id, f"Lost track of job {job_id}")
    if job is None:
        return
    if job["status"] == "done":
        kept = st.session_state.get("sidecar_csv")
        if not kept or kept[0] != job_id:
            csv = _sidecar_call(sidecar.results_csv, job_id,
                                f"Job {job_id} is done but its results could not be fetched")
            if csv is None:
                return
            kept = st.session_state.sidecar_csv = (job_id, csv)
        st.success(f"Job {job_id} is done: {job['progress']['total']:,} pairs scored.")
        st.download_button("Download the job's CSV", kept[1], f"job-{job_id}-results.csv", "text/csv",
                           key="sidecar_csv_download", on_click="ignore", icon=":material/download:")
        return
    progress = job["progress"]
    summary = f"Job {job_id} {job['status']} with {progress['done']:,} of {progress['total']:,} pairs scored."
    st.error(plain_markdown(f"{summary} {job.get('error') or ''}".strip()), title=f"Job {job_id} did not finish")
    if (st.button("Retry the job (keeps what was scored)", key="sidecar_retry")
            and _sidecar_call(sidecar.retry, job_id, f"Job {job_id} could not be retried") is not None):
        del st.session_state.sidecar_finished
        st.rerun()


@st.fragment(run_every=2.0)
def _job_progress(sidecar: SidecarClient, job_id: str) -> None:
    """Reruns on its own every 2 s; once the job has ended, hands over to the whole page."""
    job = _sidecar_call(sidecar.job, job_id, f"Lost track of job {job_id}")
    if job is None:
        return
    if job["status"] not in ("queued", "running"):
        st.session_state.sidecar_finished = job_id
        st.rerun()
    progress, eta = job["progress"], job.get("eta_seconds")
    st.progress(min(float(progress["fraction"]), 1.0),
                text=f"Job {job_id}: {job['status']} · {progress['done']:,} / {progress['total']:,} pairs"
                     + (f" · about {eta:.0f} s left" if eta is not None else ""))
    if (st.button("Cancel the job", key="sidecar_cancel")
            and _sidecar_call(sidecar.cancel, job_id, f"Job {job_id} could not be cancelled") is not None):
        st.rerun()


def _sidecar_call(call: Callable[[str], T], job_id: str, failure: str) -> T | None:
    """call(job_id), or None with the sidecar's reason shown under the title `failure`."""
    try:
        return call(job_id)
    except SidecarError as e:
        st.error(plain_markdown(str(e)), title=failure)
        return None


def plain_markdown(text: str) -> str:
    """Text for Streamlit's markdown widgets that shows exactly as typed: every ASCII punctuation escaped."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)
