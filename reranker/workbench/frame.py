"""The frame every page is drawn in: page config, logo and style, and the backend in the sidebar.

`app.py` calls `draw_frame()` once per run before the page; pages then ask `backend()` for the backend the
frame chose (None while there is none to use), and never load a model themselves.

The backend is the model in this process (`streamlit run app.py`), or a server: RERANKER_SERVER (which
`./start.sh` sets to its sidecar, so one process holds the weights) or whatever address the user types in the
sidebar. Talking to a server, this process never imports torch.
"""

from __future__ import annotations

import streamlit as st

from reranker.backend import RerankBackend, is_server, open_backend, server_from_env
from reranker.model_names import KNOWN_MODELS, resolve_model
from reranker.remote import RankerServerBackend
from reranker.sidecar.client import SidecarClient
from reranker.workbench import ASSETS
from reranker.workbench.widgets import plain_markdown

OTHER_MODEL = "Local folder or other id"
IN_PROCESS = "In this process"
ON_SERVER = "On a server"
_SHORT_NAMES = {name: name.rsplit("-", 1)[-1] for name in KNOWN_MODELS}
_BACKEND = "frame_backend"


def draw_frame(page_title: str) -> None:
    """Page config, logo and style for the page titled `page_title`, then the backend's sidebar panel."""
    st.set_page_config(page_title=f"{page_title} · Qwen-Ranker Pro", page_icon=str(ASSETS / "logo.svg"),
                       layout="wide")
    st.logo(str(ASSETS / "logo.svg"))
    st.html(f"<style>{(ASSETS / 'style.css').read_text(encoding='utf-8')}</style>")
    st.session_state[_BACKEND] = backend_sidebar()


def backend() -> RerankBackend | None:
    """The backend the frame chose on this run; None when there is none to use (the sidebar says why).

    Only its address (model name or URL, and key) is kept in the session, so the process-wide cache alone
    decides which models stay in memory."""
    spec = st.session_state.get(_BACKEND)
    return open_cached(*spec) if spec else None


def job_server() -> SidecarClient | None:
    """The sidecar that takes CSV jobs: the backend when it is a Qwen-Ranker sidecar; else none."""
    chosen = backend()
    if isinstance(chosen, RankerServerBackend):
        return SidecarClient(chosen.url, chosen.connection.key)
    return None


@st.cache_resource(show_spinner=False)
def failed_opens() -> dict[tuple[str, str | None], str]:
    """Models that failed to load in this process, with why: told again at once on every run (a click elsewhere
    never waits for another attempt) until someone presses Try again."""
    return {}


@st.cache_resource(show_spinner=False, max_entries=2)
def open_cached(spec: str, key: str | None) -> RerankBackend:
    """One backend per (model or address, key) per process, shared by every session and page."""
    return open_backend(spec, key)


def backend_sidebar() -> tuple[str, str | None] | None:
    """The sidebar's choice of backend and its status; (model or address, key), or None after saying why not."""
    env_url, env_key = server_from_env()
    with st.sidebar:
        st.subheader("Engine")
        where = st.radio("Run the model", [IN_PROCESS, ON_SERVER], index=1 if env_url else 0, horizontal=True,
                         key="backend_where", persist_state="session",
                         help="On a server: another Qwen-Ranker sidecar, a vLLM server, or a Cohere / Jina style "
                              "/v1/rerank API; nothing is loaded here.")
        spec = _server_fields(env_url, env_key) if where == ON_SERVER else _model_fields()
        status = st.empty()
    if spec is None:
        return None
    address, key = spec
    on_server = where == ON_SERVER
    # A model that failed to load is remembered (loading it again would make every click wait); a server is asked
    # again on each run, which costs at most a connection timeout and finds a sidecar that has just come up.
    failures = failed_opens() if not on_server else {}
    if spec not in failures:
        waiting = f"Asking {address}…" if on_server else f"Loading {address} (a hub model downloads the first time)…"
        try:
            with status, st.spinner(plain_markdown(waiting)):
                chosen = open_cached(address, key)
        except Exception as e:  # noqa: BLE001 - whatever stops the backend opening is shown as a message
            failures[spec] = _failure_text(e)
    if spec in failures:
        status.error("Engine not loaded")
        st.sidebar.button("Try again", key="backend_retry", on_click=failures.pop, args=(spec, None),
                          icon=":material/refresh:")
        st.error(plain_markdown(failures[spec]),
                 title="The server could not be used" if on_server else "The reranker model could not be loaded")
        return None
    info = chosen.describe()
    if on_server:
        status.success(f"**Server ready**  \nmodel: {plain_markdown(str(info['model']))}  \n"
                       f"{plain_markdown(str(info['where']))} ({plain_markdown(str(info.get('kind', '')))})")
    else:
        status.success(
            f"**Engine ready** in this process  \nmodel: {plain_markdown(str(info['model']))}  \n"
            f"device: {info['device']} · dtype: {info['dtype']}  \n"
            f"loaded in {info['load_seconds']} s · max {info['max_length']} tokens")
    return spec


def _model_fields() -> tuple[str, None] | None:
    default = resolve_model(None)
    options = [*KNOWN_MODELS, OTHER_MODEL]
    choice = st.selectbox("Model", options, index=options.index(default) if default in KNOWN_MODELS else 3,
                          format_func=lambda m: f"Qwen3-Reranker {_SHORT_NAMES[m]}" if m in _SHORT_NAMES else m,
                          key="model_choice", persist_state="session",
                          help="4B and 8B want a GPU; a local folder holds config.json, tokenizer and weights.")
    if choice == OTHER_MODEL:
        model = st.text_input("Model folder or hub id", value=default if default not in KNOWN_MODELS else "",
                              key="model_folder", persist_state="session").strip()
    else:
        model = choice
    if not model:
        st.info("Type a model folder or hub id.")
        return None
    if is_server(model):
        st.error("That is a server's address: choose **On a server** above to use it.")
        return None
    return model, None


def _server_fields(env_url: str | None, env_key: str | None) -> tuple[str, str | None] | None:
    """The key from the environment is never put in the page: an empty key field means that one."""
    url = st.text_input("Server address", value=env_url or "", key="server_url", persist_state="session",
                        placeholder="http://gpu-box:8000", help="A Qwen-Ranker sidecar's or vLLM server's base "
                        "address, or a full …/v1/rerank URL.").strip()
    key = st.text_input("Server key", type="password", key="server_key", persist_state="session",
                        placeholder="from RERANKER_SERVER_KEY" if env_key else "none").strip()
    if not url:
        st.info("Type the server's address, e.g. http://127.0.0.1:8502.")
        return None
    if not is_server(url):
        st.error("The address starts with http:// or https://.")
        return None
    return url, key or (env_key if url == env_url else None)


def _failure_text(error: BaseException) -> str:
    from reranker.backend import BackendError

    if isinstance(error, BackendError):
        return str(error)
    from reranker.loading import load_failure_text

    return load_failure_text(error)
