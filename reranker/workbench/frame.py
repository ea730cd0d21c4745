"""The frame every page is drawn in: page config, logo and style, and the backend in the sidebar.

`app.py` calls `draw_frame()` once per run before the page; pages then ask `backend()` for the backend the
frame chose (None while there is none to use), and never load a model themselves.

The backend is the model in this process, or a server: RERANKER_SERVER or whatever address the user types in the
sidebar. Under `./start.sh` (sidecar/one_port.py) the model in this process is the one the API scores with, judged
through its queue. Talking to a server, this process never imports torch.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import streamlit as st

from reranker.backends import hosted_specs, open_backend, server_from_env
from reranker.core.addresses import is_loopback, is_server
from reranker.core.backend import JobService, RerankBackend
from reranker.core.calibrated import CalibrationError, calibrated
from reranker.core.environment import API_KEY, listening_host
from reranker.core.failures import failure_text
from reranker.core.model_names import (
    FAST,
    INT8,
    KNOWN_MODELS,
    default_dtype,
    model_and_dtype,
    resolve_model,
    scored_name,
)
from reranker.workbench import ASSETS
from reranker.workbench.backend_openings import Openings, Spec
from reranker.workbench.broken_text import accept_broken_text
from reranker.workbench.draft_panel import browser
from reranker.workbench.saved_sessions import data_folder
from reranker.workbench.tuning_view import tuned_models
from reranker.workbench.widgets import plain_markdown

OTHER_MODEL = "Local folder or other id"
EXACT = "exact"
IN_PROCESS = "In this process"
ON_SERVER = "On a server"
_SHORT_NAMES = {name: name.rsplit("-", 1)[-1] for name in KNOWN_MODELS}
_BACKEND = "frame_backend"
_UNLOCKED = "frame_unlocked"
CALIBRATION = "frame_calibration"
"""A CAL.json the Tune page applied to the sidebar's model: every page scores through it (core/calibrated.py)."""
MODELS_KEPT = 4
"""Backends held open at once: the sidebar's and up to three more for Compare (each checked against free memory
before it loads)."""
READY_AT_ONCE_SECONDS = 0.3
"""A backend ready this soon (cached, or a tiny model) shows as ready without a loading notice first."""
SERVER_RETRY_SECONDS = 10.0


def draw_frame(page_title: str) -> None:
    """Page config, logo and style for the page titled `page_title`, then the backend's panel in the sidebar; the
    backend opens in the background while the page is drawn."""
    accept_broken_text()
    st.set_page_config(page_title=f"{page_title} · Qwen-Ranker Pro", page_icon=str(ASSETS / "logo.svg"),
                       layout="wide")
    st.logo(str(ASSETS / "logo.svg"))
    st.html(f"<style>{(ASSETS / 'style.css').read_text(encoding='utf-8')}</style>")
    if not unlocked():
        st.stop()
    browser()  # on every page, so a reload on any of them keeps the browser's id where it is in the address
    st.session_state[_BACKEND] = backend_sidebar()


def unlocked() -> bool:
    """Whether this browser session may use the pages. A workbench listening beyond this machine (RERANKER_HOST)
    with a RERANKER_API_KEY asks for that key once per session, so a server on a network is not an open door;
    on loopback, or with no key (RERANKER_ALLOW_OPEN), the pages are open."""
    key = API_KEY.read() or ""
    if not key or is_loopback(listening_host()) or st.session_state.get(_UNLOCKED):
        return True
    st.title("Qwen-Ranker Pro")
    typed = st.text_input("Key", type="password", key="unlock_key",
                          help="This workbench is reachable from other machines: type its RERANKER_API_KEY.")
    if typed and hmac.compare_digest(typed.encode(), key.encode()):
        st.session_state[_UNLOCKED] = True
        st.rerun()
    if typed:
        st.error("That is not this workbench's key.")
    else:
        st.info("This workbench is reachable from other machines, so it asks for its key (RERANKER_API_KEY) first.",
                icon=":material/lock:")
    return False


def backend() -> RerankBackend | None:
    """The backend the frame chose, once it is open; None while it opens or when there is none to use (the
    frame says why).

    Only its address (model name or URL, and key) is kept in the session, so the process-wide openings alone
    decide which models stay in memory."""
    spec = st.session_state.get(_BACKEND)
    if not spec:
        return None
    opening = openings().get(spec)
    if not opening.done or opening.backend is None:
        return None
    return _with_calibration(opening.backend)


def _with_calibration(opened: RerankBackend) -> RerankBackend:
    """`opened` through the calibration the Tune page applied, if any; one that can no longer be read (its file
    removed) is dropped, and the model scores plainly again."""
    path = st.session_state.get(CALIBRATION)
    try:
        return calibrated(opened, path)
    except CalibrationError:
        st.session_state.pop(CALIBRATION, None)
        return opened


def still_opening() -> bool:
    """Whether the chosen backend is still opening (the frame shows how long it has taken)."""
    spec = st.session_state.get(_BACKEND)
    return bool(spec) and not openings().get(spec).done


def job_service() -> JobService | None:
    """Where CSV jobs run: `job_backend()`'s jobs; None when there is nowhere."""
    runner = job_backend()
    return runner.jobs() if runner is not None else None


def job_backend() -> RerankBackend | None:
    """The backend whose jobs and API the pages offer: the chosen one when it runs jobs (a Qwen-Ranker sidecar, or
    under ./start.sh the model the workbench serves); when the chosen model runs in this process without them (another
    precision than the one ./start.sh serves), the model this process serves its API with; else None."""
    chosen = backend()
    if st.session_state.get(CALIBRATION):
        return None  # the jobs would score without the calibration the pages score with
    if chosen is None or chosen.capabilities.jobs:
        return chosen
    if not chosen.capabilities.in_process:
        return None  # a server that runs no jobs: the jobs of this process would score with another model
    for spec in hosted_specs():
        opening = openings().get(spec)
        served = opening.backend if opening.wait(READY_AT_ONCE_SECONDS) else None
        if served is not None and served.capabilities.jobs:
            return served
    return None


@st.cache_resource(show_spinner=False)
def openings() -> Openings:
    """This process's backends, each opened once in a background thread and shared by every session and page."""
    return Openings(_open, failure_text, keep=MODELS_KEPT)


def _open(address: str, key: str | None) -> RerankBackend:
    """A model named plainly opens in its default dtype, whatever RERANKER_DTYPE says (that is the default of the
    sidebar's Precision, which names any other dtype in the address: "… (int8)")."""
    if is_server(address) or model_and_dtype(address)[1] is not None:
        return open_backend(address, key)
    return open_backend(address, key, dtype="auto")


def backend_sidebar() -> Spec | None:
    """The sidebar's choice of backend and its status (a line in the page too, as the sidebar may be folded away);
    returns (model or address, key), or None after saying why there is none."""
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
    address, _ = spec
    on_server = where == ON_SERVER
    # A model that failed to load is remembered until Try again (loading it again would make every click wait); a
    # server's failure is forgotten after a while, as it may have come up since.
    opening = openings().get(spec, retry_failure_after=SERVER_RETRY_SECONDS if on_server else None)
    opening.wait(READY_AT_ONCE_SECONDS)
    if not opening.done:
        waiting = (f"Asking {address}" if on_server else f"Loading {address}" if Path(address).is_dir()
                   else f"Loading {address} (a hub model downloads the first time)")
        status.info(plain_markdown(waiting + "…"), icon=":material/hourglass_top:")
        opening_notice(spec, waiting)
        return spec
    if opening.backend is None:
        status.error("Server not usable" if on_server else "Engine not loaded")
        st.sidebar.button("Try again", key="backend_retry", on_click=openings().forget, args=(spec,),
                          icon=":material/refresh:")
        st.error(plain_markdown(opening.error or "it stopped without saying why"),
                 title="The server could not be used" if on_server else "The reranker model could not be loaded")
        return spec
    info = _with_calibration(opening.backend).describe()  # type: ignore[arg-type]
    applied = st.session_state.get(CALIBRATION)
    model = plain_markdown(str(info["model"]))
    if on_server:
        where_text = f"{plain_markdown(str(info['where']))} ({plain_markdown(str(info.get('kind', '')))})"
        status.success(f"**Server ready**  \nmodel: {model}  \n{where_text}")
    else:
        where_text = f"in this process on {info['device']}"
        status.success(
            f"**Engine ready** in this process  \nmodel: {model}  \n"
            f"device: {info['device']} · dtype: {info['dtype']}  \n"
            f"loaded in {info['load_seconds']} s · max {info['max_length']} tokens")
    if applied:
        st.sidebar.caption(plain_markdown(f"Scores read through {applied}"))
        st.sidebar.button("Remove the calibration", key="frame_uncalibrate", on_click=st.session_state.pop,
                          args=(CALIBRATION, None), icon=":material/close:")
    st.caption(f":material/check_circle: {model} · {where_text}", help="The engine; the sidebar (☰) changes it.")
    return spec


@st.fragment(run_every=1.0)
def opening_notice(spec: Spec, waiting: str) -> None:
    """In the page while the backend opens: how long it has taken; reruns the whole app once it is open (or not)."""
    opening = openings().get(spec)
    if opening.done:
        st.rerun()
    st.info(plain_markdown(f"{waiting}: {opening.seconds:.0f} s so far. Type meanwhile; the buttons that score "
                           "turn on when it is ready."), icon=":material/hourglass_top:")


def _model_fields() -> tuple[str, None] | None:
    default = resolve_model(None)
    options = [*KNOWN_MODELS, *tuned_models(data_folder()), OTHER_MODEL]
    choice = st.selectbox("Model", options, index=options.index(default if default in KNOWN_MODELS else OTHER_MODEL),
                          format_func=lambda m: f"Qwen3-Reranker {_SHORT_NAMES[m]}" if m in _SHORT_NAMES
                          else f"Tuned: {Path(m).name}" if m != OTHER_MODEL else m,
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
    started_with = default_dtype()
    approximate = {INT8: "int8 (approximate)", FAST: "Fastest (approximate)"}
    precision = st.radio("Precision", [EXACT, INT8, FAST], index=[EXACT, INT8, FAST].index(started_with)
                         if started_with in approximate else 0, horizontal=True,
                         key="model_precision", persist_state="session",
                         format_func=lambda p: approximate.get(p, "Exact"),
                         help="int8 multiplies the model's linear layers in int8 on a CPU: about 3x faster, scores "
                              "within a few hundredths of float32's (docs/BENCHMARKS.md), shown with (int8) after "
                              "the model's name. Fastest: bfloat16 where the CPU has AVX512-BF16 or AMX, else int8, "
                              "named by the one that runs. Exact: float32 on a CPU, bfloat16 on a GPU.")
    exact = started_with if started_with not in approximate else None  # e.g. bfloat16, when started so
    return scored_name(model, precision if precision in approximate else exact), None


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
        if "://" in url or " " in url:
            st.error("A server's address starts with http:// or https://.")
            return None
        url = f"http://{url}"
        st.caption(plain_markdown(f"Taken as {url}."))
    return url, key or (env_key if url == env_url else None)
