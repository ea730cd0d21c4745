"""A browser told apart by a random id in a long-lived cookie: the one-port server gives one to every browser that
has none (`sidecar/one_port.BrowserCookie`), and the pages keep each browser's work under it (`workbench/drafts`).
Served without that cookie (`streamlit run app.py`), the pages keep the id in their address instead (BROWSER_PARAM)."""

from __future__ import annotations

import re
import secrets

BROWSER_COOKIE = "qrp_browser"
BROWSER_PARAM = "browser"
"""The page address's `?browser=<id>` where there is no cookie."""
_BROWSER_ID = re.compile(r"[0-9a-f]{32}")


def new_browser_id() -> str:
    return secrets.token_hex(16)


def is_browser_id(value: object) -> bool:
    return isinstance(value, str) and _BROWSER_ID.fullmatch(value) is not None
