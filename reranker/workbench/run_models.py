"""The model (and instruction) of each Compare or Evaluate run. The model: the sidebar's; another opened in this
process once it is known to fit in memory (its size read from its config.json before anything loads); one of the
sidecar's extra models, loaded there; or another server."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from reranker.core.addresses import is_server
from reranker.core.backend import RerankBackend
from reranker.core.failures import RerankerError
from reranker.core.model_names import INT8, KNOWN_MODELS, model_and_dtype, scored_name
from reranker.engine.memory import fit_of
from reranker.workbench import frame
from reranker.workbench.presets import INSTRUCTION_PRESETS
from reranker.workbench.saved_sessions import data_folder
from reranker.workbench.tuning_view import tuned_models
from reranker.workbench.widgets import instruction_picker, plain_markdown

SIDEBAR = "The sidebar's model"
OTHER = "Local folder or other id"
SERVER = "A server"


def run_pickers(names: Sequence[str], key_prefix: str,
                sidebar: RerankBackend | None) -> list[tuple[RerankBackend | None, str | None]]:
    """One column per run named in `names` (Compare's and Evaluate's runs): its model and its instruction (the
    presets in turn as defaults), under keys `{key_prefix}_{name}_model` and `{key_prefix}_{name}`."""
    presets = list(INSTRUCTION_PRESETS)
    chosen = []
    for i, (name, column) in enumerate(zip(names, st.columns(len(names)))):
        with column:
            st.markdown(f"**Run {name}**")
            model = run_model(f"{key_prefix}_{name}_model", sidebar)
            if model is not None and not model.capabilities.instruction:
                st.caption(plain_markdown(f"{model.model_name} reads the query and the document alone: it takes "
                                          "no instruction."))
                chosen.append((model, None))
                continue
            chosen.append((model, instruction_picker(f"Instruction {name}", key=f"{key_prefix}_{name}",
                                                     preset=presets[i])))
    return chosen


def run_model(key: str, sidebar: RerankBackend | None) -> RerankBackend | None:
    """A model picker for one run; the backend to score it with, or None (with the reason shown) while there is
    none: still loading, refused for memory, or failed."""
    if sidebar is None:
        return None
    can = sidebar.capabilities
    extras = _extras(sidebar) if can.extra_models else {}
    if can.extra_models:
        options = [SIDEBAR, *extras, SERVER]
    else:
        options = ([SIDEBAR, *KNOWN_MODELS, *(scored_name(m, INT8) for m in KNOWN_MODELS),
                    *tuned_models(data_folder()), OTHER, SERVER]
                   if can.in_process else [SIDEBAR, SERVER])
    choice = st.selectbox("Model", options, key=key, persist_state="session",
                          format_func=lambda m: f"{SIDEBAR} ({sidebar.model_name.rsplit('/', 1)[-1]})"
                          if m == SIDEBAR else m,
                          help="On a Qwen-Ranker sidecar, the models it lists in RERANKER_EXTRA_MODELS are offered "
                               "too; in this process, any model that fits in memory.")
    if choice == SIDEBAR:
        return sidebar
    if choice not in (OTHER, SERVER):
        if can.extra_models:
            return _extra_model(key, sidebar, choice, extras.get(choice, {}))
        return sidebar if choice == sidebar.model_name else _opened(choice, _bytes_per_parameter(sidebar))
    name = st.text_input("Model folder or hub id" if choice == OTHER else "Server address", key=f"{key}_other",
                         persist_state="session", placeholder="http://gpu-box:8000" if choice == SERVER else "",
                         help="A server costs nothing here; it is asked what it is, as in the sidebar.").strip()
    if not name:
        return None
    if choice == SERVER and not is_server(name):
        if "://" in name or " " in name:
            st.error("A server's address starts with http:// or https://.")
            return None
        name = f"http://{name}"
        st.caption(plain_markdown(f"Taken as {name}."))
    if is_server(name):
        return _opened(name, None)
    return sidebar if name == sidebar.model_name else _opened(name, _bytes_per_parameter(sidebar))


def _bytes_per_parameter(sidebar: RerankBackend) -> int:
    """For the memory check of another model: as the sidebar's runs (int8 holds its embeddings in float32, so about
    2 bytes a parameter, like bfloat16)."""
    return 4 if sidebar.describe().get("dtype") == "float32" else 2


def _extras(server: RerankBackend) -> dict[str, dict]:
    """The server's extra models and their states ({} when it has none or does not answer)."""
    try:
        return server.extra_models()
    except RerankerError:
        return {}


def _extra_model(key: str, server: RerankBackend, choice: str, extra: dict) -> RerankBackend | None:
    """One of the server's extra models (a sidecar's RERANKER_EXTRA_MODELS), loaded there on request."""
    st.caption(plain_markdown(f"{choice} on the sidecar: {extra.get('needs') or 'size not known before it downloads'}"
                              f" · {extra.get('state')}"))
    if extra.get("state") == "ready":
        return server.with_model(choice)
    if extra.get("state") == "failed":
        st.error(plain_markdown(str(extra.get("error"))), title="The sidecar could not load this model")
    elif extra.get("state") == "loading":
        _extra_loading(server, choice)
    elif st.button("Load it on the sidecar", key=f"{key}_load", icon=":material/download:"):
        try:
            server.load_model(choice)
        except RerankerError as e:
            st.error(plain_markdown(str(e)), title="The sidecar did not load it")
        else:
            st.rerun()
    return None


@st.fragment(run_every=2.0)
def _extra_loading(server: RerankBackend, name: str) -> None:
    """While the server loads `name`: say so, and rerun the page once it has (or has failed)."""
    try:
        state = server.extra_models().get(name, {}).get("state")
    except RerankerError:
        state = None
    if state != "loading":
        st.rerun()
    st.info(plain_markdown(f"The sidecar is loading {name}; Compare turns on when it is ready."),
            icon=":material/hourglass_top:")


def _opened(name: str, bytes_per_parameter: int | None) -> RerankBackend | None:
    """`name` opened through the frame's openings (a model in this process once it is known to fit, checked with
    `bytes_per_parameter`; a server with None)."""
    spec = (name, None)
    openings = frame.openings()
    if bytes_per_parameter is not None and not openings.has(spec):
        model, dtype = model_and_dtype(name)
        fit = fit_of(model, 2 if dtype == INT8 else bytes_per_parameter)
        if not fit.fits:
            st.error(plain_markdown(f"{fit.refusal('here')}. Free memory, or compare it on a GPU server."))
            return None
        st.caption(plain_markdown(fit.text()))
    opening = openings.get(spec)
    if not opening.done:
        frame.opening_notice(spec, f"{'Asking' if bytes_per_parameter is None else 'Loading'} {name}")
        return None
    if opening.backend is None:
        st.error(plain_markdown(opening.error or "it stopped without saying why"),
                 title="This run's model or server cannot be used")
        st.button("Try again", key=f"retry_{name}", on_click=openings.forget, args=(spec,))
        return None
    return opening.backend
