"""Text with a lone surrogate (pasted from a broken source, e.g. "\\ud800") reaching the pages.

The browser encodes such a character as three bytes that are not UTF-8 (ED A0 80 for U+D800), and Streamlit's server
then refuses the whole message ("String field had bad UTF-8") and drops the connection: every click after it is
lost, and the page looks dead. `accept_broken_text` has the server read those three bytes as U+FFFD, the
replacement character, which has three bytes too (so the message's lengths stay right); the pages then say which
input holds it (`REPLACEMENT`), and score it as it is.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.message import DecodeError
from streamlit.proto.BackMsg_pb2 import BackMsg

REPLACEMENT = "\ufffd"
_SURROGATE_BYTES = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")
"""A UTF-16 surrogate (U+D800 to U+DFFF) written as if it were a character: three bytes, never valid UTF-8."""


def repaired(data: bytes) -> bytes:
    """`data` with every encoded surrogate replaced by U+FFFD (the same length)."""
    return _SURROGATE_BYTES.sub(REPLACEMENT.encode("utf-8"), data)


class LenientBackMsg:
    """A BackMsg that reads a browser's message whose strings hold surrogates (read as U+FFFD) instead of refusing
    it; everything else is the BackMsg's own."""

    __slots__ = ("_message",)

    def __init__(self) -> None:
        object.__setattr__(self, "_message", BackMsg())

    def ParseFromString(self, data: bytes) -> int:  # noqa: N802 - the name protobuf gives it
        try:
            return self._message.ParseFromString(data)
        except DecodeError:
            fixed = repaired(data)
            if fixed == data:
                raise
            return self._message.ParseFromString(fixed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)


def accept_broken_text() -> None:
    """Have this process's Streamlit server read messages with surrogates (once; later calls do nothing). A Streamlit
    whose server is laid out otherwise is left as it is: the page works, only such text is refused as before."""
    try:
        from streamlit.web.server.starlette import starlette_websocket
    except ImportError:
        return

    if getattr(starlette_websocket, "BackMsg", None) is BackMsg:
        starlette_websocket.BackMsg = LenientBackMsg  # type: ignore[misc,assignment]


def broken_text_note(what: str, text: str) -> str | None:
    """What to say when `text` (the input called `what`) holds a character that could not be read; None when not."""
    count = text.count(REPLACEMENT)
    if not count:
        return None
    many = f"{count:,} characters that could not be read" if count > 1 else "a character that could not be read"
    holds = "hold" if what.startswith("documents ") else "holds"
    return (f"The {what} {holds} {many} (an invalid character, such as half of an emoji, pasted from a broken source), "
            f"shown as {REPLACEMENT}: it is scored as {REPLACEMENT}. Retype that part if it matters.")
