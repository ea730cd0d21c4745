"""Save, share and open a Rerank result on the page: `?session=<id>` in the address restores a saved one before the
inputs are drawn; the panel under the result saves it, downloads it as JSON and opens such a file."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import streamlit as st

from reranker.workbench.document_blocks import formatted_as
from reranker.workbench.presets import CUSTOM, INSTRUCTION_PRESETS
from reranker.workbench.results import Ranking
from reranker.workbench.saved_sessions import (
    SavedSession,
    SessionError,
    open_session,
    save_session,
    session_from_json,
    session_json,
)
from reranker.workbench.widgets import plain_markdown

ADDRESS_PARAM = "session"
_OPENED = "session_opened"  # the id last opened from the address, so it is opened once
_RESTORED = "session_restored"  # (the restored Ranking, "saved at … with model …")
_PROBLEM = "session_problem"


def address_session() -> str | None:
    """The saved session the page's address names, if any."""
    return st.query_params.get(ADDRESS_PARAM) or None


def restore_from_address() -> bool:
    """Before the inputs are drawn: open the session in the address (once), filling the inputs and the ranking;
    whether the page now holds it. A session that cannot be opened is said, taken out of the address, and leaves the
    inputs as they were (the caller then brings back this browser's own, `draft_panel.restore`)."""
    session_id = address_session()
    if not session_id:
        return False
    if st.session_state.get(_OPENED) == session_id:
        return True
    try:
        put_in_page(open_session(session_id))
    except SessionError as e:
        st.error(plain_markdown(f"{e}. Nothing on the page was changed."),
                 title="The saved session could not be opened")
        st.query_params.pop(ADDRESS_PARAM, None)
        return False
    st.session_state[_OPENED] = session_id
    return True


def restored_note(ranking: Ranking) -> None:
    """Under a restored ranking, while it is the one shown: when and with what it was saved."""
    restored = st.session_state.get(_RESTORED)
    if restored is not None and restored[0] is ranking:
        st.info(plain_markdown(restored[1]), icon=":material/history:")


def session_panel(ranking: Ranking | None) -> None:
    """Save the ranking (to the data folder, its id put in the address) or download it as JSON; open such a file."""
    with st.expander("Save or share this ranking" if ranking is not None else "Open a saved session"):
        if ranking is not None:
            st.caption("Saving keeps the inputs, the model and every score; the page's address then opens it again "
                       "without scoring. The JSON file does the same on another workbench.")
            row = st.container(horizontal=True)
            row.button("Save", key="session_save", icon=":material/save:", on_click=_save, args=(ranking,))
            row.download_button("Download session JSON", session_json(ranking, _documents_text(ranking)),
                                "reranker-session.json", "application/json", key="session_download",
                                on_click="ignore", icon=":material/download:")
        st.file_uploader("Open a session file", type=["json"], key="session_upload", on_change=_open_upload)
    problem = st.session_state.pop(_PROBLEM, None)
    if problem is not None:
        st.error(plain_markdown(problem[1]), title=plain_markdown(problem[0]))
    elif ranking is not None and st.session_state.get(_OPENED) == st.query_params.get(ADDRESS_PARAM, ""):
        st.caption(f"Saved as session {st.session_state[_OPENED]}: this link opens it again (the copy button is on "
                   "its right).")
        st.code(session_link(st.session_state[_OPENED]), language=None)


def session_link(session_id: str) -> str:
    """The address that opens a saved session: this page's, as the browser reached it, with `?session=<id>`."""
    page = urlsplit(st.context.url if isinstance(st.context.url, str) else "")
    return urlunsplit(page._replace(path=page.path or "/", query=f"{ADDRESS_PARAM}={session_id}", fragment=""))


def _save(ranking: Ranking) -> None:
    try:
        saved = save_session(ranking, _documents_text(ranking))
    except OSError as e:
        st.session_state[_PROBLEM] = ("The session was not saved", f"{type(e).__name__}: {e}")
        return
    st.session_state[_OPENED] = saved.id
    st.query_params[ADDRESS_PARAM] = saved.id


def _open_upload() -> None:
    upload = st.session_state.get("session_upload")
    if upload is None:
        return
    try:
        put_in_page(session_from_json(upload.getvalue()))
    except SessionError as e:
        st.session_state[_PROBLEM] = (f"{upload.name} could not be opened", str(e))
        return
    st.query_params.pop(ADDRESS_PARAM, None)


def put_in_page(saved: SavedSession) -> None:
    """The saved inputs into the widgets (before they are drawn) and the saved ranking as the page's result."""
    ranking = saved.ranking
    st.session_state.query = ranking.query
    st.session_state.documents = saved.documents_text
    st.session_state.documents_blocks = ranking.blocks
    preset = next((name for name, text in INSTRUCTION_PRESETS.items() if text == ranking.instruction), None)
    st.session_state.instruction_preset = preset or CUSTOM
    if preset is None:
        st.session_state.instruction_text = ranking.instruction
    st.session_state.passage_tokens = ranking.passage_tokens or 0
    st.session_state.ranking = ranking
    st.session_state.why_open = None
    st.session_state[_RESTORED] = (ranking, f"Saved at {_local_time(saved.saved_at)} with model {ranking.model}; "
                                            "shown as saved, not scored again (the view settings start afresh).")


def _local_time(saved_at: str) -> str:
    """An ISO 8601 time as this machine's local time, e.g. '23 Nov 2026, 18:42'; as given when it is not one."""
    try:
        return datetime.fromisoformat(saved_at).astimezone().strftime("%d %b %Y, %H:%M")
    except ValueError:
        return saved_at


def _documents_text(ranking: Ranking) -> str:
    return formatted_as(ranking.parsed.documents, ranking.parsed.labels, ranking.blocks)
