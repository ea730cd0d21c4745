"""The model of one Compare run: the sidebar's, or another one opened in this process once it is known to fit in
memory (its size read from its config.json before anything loads)."""

from __future__ import annotations

import streamlit as st

from reranker.backend import RerankBackend, is_server
from reranker.model_memory import available_bytes, estimate, read_config
from reranker.model_names import KNOWN_MODELS
from reranker.workbench import frame
from reranker.workbench.widgets import plain_markdown

SIDEBAR = "The sidebar's model"
OTHER = "Local folder or other id"


def run_model(key: str, sidebar: RerankBackend | None) -> RerankBackend | None:
    """A model picker for one run; the backend to score it with, or None (with the reason shown) while there is
    none: still loading, refused for memory, or failed."""
    if sidebar is None:
        return None
    if sidebar.describe().get("where") != "in this process":
        st.caption(plain_markdown(f"Model: {sidebar.model_name} (on the server). Comparing models needs them in "
                                  "this process (streamlit run app.py); a server serving several is not built yet."))
        return sidebar
    choice = st.selectbox("Model", [SIDEBAR, *KNOWN_MODELS, OTHER], key=key, persist_state="session",
                          format_func=lambda m: f"{SIDEBAR} ({sidebar.model_name.rsplit('/', 1)[-1]})"
                          if m == SIDEBAR else m)
    name = st.text_input("Model folder or hub id", key=f"{key}_other", persist_state="session").strip() \
        if choice == OTHER else choice
    if name in (SIDEBAR, "", sidebar.model_name):
        return sidebar if name != "" else None
    if is_server(name):
        st.error("Servers are compared from the sidebar (On a server); here, a model folder or hub id.")
        return None
    return _opened(name, 4 if sidebar.describe().get("dtype") == "float32" else 2)


def _opened(name: str, bytes_per_parameter: int) -> RerankBackend | None:
    spec = (name, None)
    openings = frame.openings()
    if not openings.has(spec):
        config = read_config(name)
        if config is not None:
            needed, free = estimate(config, bytes_per_parameter), available_bytes()
            if free is not None and needed.total_bytes > free:
                st.error(plain_markdown(f"{name} needs {needed.text()}; {free / 1e9:.1f} GB is free here, so it is "
                                        "not loaded. Free memory, or compare it on a GPU server."))
                return None
            st.caption(plain_markdown(f"{name}: {needed.text()}"
                                      + (f"; {free / 1e9:.1f} GB free." if free is not None else ".")))
        else:
            st.caption(plain_markdown(f"{name}: its size is not known before it downloads."))
    opening = openings.get(spec)
    if not opening.done:
        frame.opening_notice(spec, f"Loading {name}")
        return None
    if opening.backend is None:
        st.error(plain_markdown(opening.error or "it stopped without saying why"),
                 title="This model could not be loaded")
        st.button("Try again", key=f"retry_{name}", on_click=openings.forget, args=(spec,))
        return None
    return opening.backend
