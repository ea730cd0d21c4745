"""Server addresses: telling one from a model name, and showing one without its credentials."""

from __future__ import annotations

import ipaddress
import socket
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


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps a server to this machine (127.0.0.1, ::1, localhost); 0.0.0.0, :: and
    a network address do not."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def addresses_to_open(host: str, port: int) -> list[str]:
    """The addresses a person opens for a server listening on host:port: localhost, and on every interface (0.0.0.0,
    ::) this machine's own network address too."""
    local = f"http://localhost:{port}"
    if is_loopback(host):
        return [local]
    if host not in ("0.0.0.0", "::", ""):
        return [local if host == "localhost" else f"http://{host}:{port}"]
    return [local, f"http://{_network_address()}:{port}"]


def _network_address() -> str:
    """This machine's address on the network its default route leaves by (nothing is sent: a UDP socket is only
    pointed there); its host name when it has no such route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 1))
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()
