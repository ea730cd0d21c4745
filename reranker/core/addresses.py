"""Server addresses: telling one from a model name, and showing one without its credentials."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def is_server(spec: str | None) -> bool:
    """An http:// or https:// address (anything else is a model: a hub id or a folder)."""
    return bool(spec) and spec.strip().lower().startswith(("http://", "https://"))


def shown_address(url: str) -> str:
    """The address without any user:password part, for status lines, /health and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
