"""The frame every page is drawn in: page config, logo and style, and the engine in the sidebar.

`app.py` calls `draw_frame()` once per run before the page; pages then ask `engine()` for the engine the
frame chose (None while there is none to use), and never load a model themselves. Pages already cope with
None (their buttons are disabled), so a frame that loads the model in the background and shows its status
meanwhile needs no change to them.
"""

from __future__ import annotations

import streamlit as st

from reranker import KNOWN_MODELS, Qwen3Reranker
from reranker.loading import load_failure_text, resolve_model
from reranker.workbench import ASSETS
from reranker.workbench.widgets import plain_markdown

OTHER_MODEL = "Local folder or other id"
_SHORT_NAMES = {name: name.rsplit("-", 1)[-1] for name in KNOWN_MODELS}
_ENGINE_MODEL = "frame_engine_model"


def draw_frame(page_title: str) -> None:
    """Page config, logo and style for the page titled `page_title`, then the engine's sidebar panel."""
    st.set_page_config(page_title=f"{page_title} · Qwen-Ranker Pro", page_icon=str(ASSETS / "logo.svg"),
                       layout="wide")
    st.logo(str(ASSETS / "logo.svg"))
    st.html(f"<style>{(ASSETS / 'style.css').read_text(encoding='utf-8')}</style>")
    loaded = engine_sidebar()
    st.session_state[_ENGINE_MODEL] = loaded.model_name if loaded is not None else None


def engine() -> Qwen3Reranker | None:
    """The engine the frame chose on this run; None when it could not load (the sidebar says why).

    Only the model's name is kept in the session, so the process-wide cache alone decides which models stay
    in memory."""
    model = st.session_state.get(_ENGINE_MODEL)
    return load_engine(model) if model else None


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
            loaded = load_engine(model)
    except Exception as e:  # noqa: BLE001 - whatever stops the model loading is shown as a message, not a traceback
        status.error("Engine not loaded")
        st.error(plain_markdown(load_failure_text(e)), title="The reranker model could not be loaded")
        return None
    info = loaded.describe()
    status.success(
        f"**Engine ready**  \nmodel: {plain_markdown(str(info['model']))}  \ndevice: {info['device']} · "
        f"dtype: {info['dtype']}  \nloaded in {info['load_seconds']} s · max {info['max_length']} tokens")
    return loaded
