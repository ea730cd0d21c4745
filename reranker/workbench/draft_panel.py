"""A page's inputs and results kept per browser (workbench.drafts) on the page: restored after a reload, a closed tab
or a restart, and a list of recent results to go back to.

Each page calls `restore` before drawing its inputs, `keep_inputs` once they are drawn (before it scores, so a reload
in the middle of scoring keeps them), `keep_result` after a run, and `history` where its results end. The browser is
told apart by the one-port server's cookie, or, without one (`streamlit run app.py`), by an id in the page's address
(`?browser=<id>`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import streamlit as st

from reranker.core.browser_ids import BROWSER_COOKIE, BROWSER_PARAM, is_browser_id, new_browser_id
from reranker.workbench.drafts import DraftStore, PastResult
from reranker.workbench.saved_sessions import SessionError, data_folder
from reranker.workbench.widgets import plain_markdown

_BROWSER = "drafts_browser"  # session: the id taken from (or put in) the address


def browser() -> str | None:
    """This browser's id: from the cookie the one-port server gave it; else (`streamlit run app.py`, which sets no
    cookie) from the page's address, `?browser=<id>`, which this puts there on the first run, so a reload, which
    keeps the address, keeps the id. None where there is no browser (AppTest without an address, bare mode)."""
    try:
        value = st.context.cookies.get(BROWSER_COOKIE)
    except Exception:  # no browser behind this run (bare mode)
        value = None
    if is_browser_id(value):
        return value
    return _browser_in_address()


def _browser_in_address() -> str | None:
    """The id in the address (put back when a page switch dropped it), or a new one put there."""
    kept = st.session_state.get(_BROWSER)
    given = st.query_params.get(BROWSER_PARAM)
    if is_browser_id(given):
        st.session_state[_BROWSER] = given
        return given
    who = kept if is_browser_id(kept) else new_browser_id()
    st.session_state[_BROWSER] = who
    st.query_params[BROWSER_PARAM] = who
    return who


@st.cache_resource(show_spinner=False)
def _store(path: str) -> DraftStore:
    return DraftStore(Path(path))


def store() -> DraftStore:
    return _store(str((data_folder() / "drafts.sqlite3").resolve()))


def restore(page: str, keys: Sequence[str], show_result: Callable[[str], None]) -> None:
    """Once per session, before the inputs are drawn: this browser's last inputs on the page into its widgets, and
    its last result shown (`show_result` gets the result's JSON)."""
    flag = f"drafts_restored_{page}"
    who = browser()
    if st.session_state.get(flag) or who is None:
        return
    st.session_state[flag] = True
    try:
        inputs = store().inputs(who, page) or {}
        last = store().result(who, page)
    except Exception as e:  # a damaged or unwritable file must not stop the page
        st.warning(plain_markdown(f"This browser's last inputs could not be read back: {type(e).__name__}: {e}"))
        return
    for key in keys:
        if key in inputs and key not in st.session_state:
            st.session_state[key] = inputs[key]
    st.session_state[f"drafts_saved_{page}"] = {k: inputs[k] for k in keys if k in inputs}
    if last is not None:
        try:
            show_result(last)
        except SessionError:
            pass  # written by another version; the inputs are back, the result is scored again on demand


def skip_restore(page: str) -> None:
    """The page shows something else (a saved session): `restore` then brings nothing back in this session."""
    st.session_state[f"drafts_restored_{page}"] = True


def keep_inputs(page: str, keys: Sequence[str]) -> None:
    """The page's inputs as they are now, written when they changed."""
    who = browser()
    if who is None:
        return
    inputs = {key: st.session_state[key] for key in keys if isinstance(st.session_state.get(key), str | int | float)}
    if st.session_state.get(f"drafts_saved_{page}") == inputs:
        return
    try:
        store().save_inputs(who, page, inputs)
    except Exception as e:
        st.warning(plain_markdown(f"The inputs could not be kept for a reload: {type(e).__name__}: {e}"))
        return
    st.session_state[f"drafts_saved_{page}"] = inputs


def keep_result(page: str, title: str, body: str) -> None:
    """A finished result (its JSON), first in the page's history and what a reload shows."""
    who = browser()
    if who is None:
        return
    try:
        store().add_result(who, page, title, body)
    except Exception as e:
        st.warning(plain_markdown(f"The result could not be kept for a reload: {type(e).__name__}: {e}"))


def history(page: str, what: str, open_result: Callable[[str], None]) -> None:
    """The page's recent results in this browser, newest first; Open puts one back in the page, unscored."""
    who = browser()
    if who is None:
        return
    past = {r.id: r for r in store().results(who, page)}
    if not past:
        return
    with st.expander(f"Recent {what} in this browser ({len(past)})", icon=":material/history:"):
        st.selectbox("Recent", list(past), format_func=lambda i: _line(past[i]), key=f"history_{page}",
                     label_visibility="collapsed")
        st.button("Open it again", key=f"history_{page}_open", icon=":material/restore:", on_click=_open,
                  args=(who, page, open_result))
        problem = st.session_state.pop(f"history_{page}_problem", None)
        if problem:
            st.error(plain_markdown(problem), title="That result could not be opened")


def _open(who: str, page: str, open_result: Callable[[str], None]) -> None:
    """Before the widgets are drawn again (a button's callback): the chosen result into the page."""
    body = store().result(who, page, st.session_state.get(f"history_{page}"))
    try:
        if body is None:
            raise SessionError("it is no longer kept")
        open_result(body)
    except SessionError as e:
        st.session_state[f"history_{page}_problem"] = str(e)


def title_of(query: str, documents: int, model: str) -> str:
    """A result's line in the history: its query (shortened), how many documents, which model."""
    shown = query if len(query) <= 60 else query[:57] + "…"
    return f"“{shown}” · {documents:,} document{'' if documents == 1 else 's'} · {model.rstrip('/').rsplit('/', 1)[-1]}"


def _line(result: PastResult) -> str:
    try:
        when = datetime.fromisoformat(result.saved_at).astimezone().strftime("%d %b, %H:%M")
    except ValueError:
        when = result.saved_at
    return f"{when} · {result.title}"
