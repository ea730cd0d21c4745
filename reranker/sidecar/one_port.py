"""The workbench and the whole HTTP API on one port, in one process that holds one copy of the weights: what
`./start.sh` runs (`python -m reranker workbench`).

Streamlit serves the pages (`app.py`) as an ASGI application (`st.App`) that carries the sidecar's FastAPI app as
routes: `/api/*`, `/v1/*`, `/v2/*`, `/rerank`, `/score`, `/health`, `/metrics`, `/docs` go to the API, everything
else to Streamlit. The API's runtime (the model, its queue, the job store and worker) starts and stops with the
server, and the pages' default model is that same runtime's, judged through its queue (`sidecar.in_process`): the
page and the API requests share one queue and its fairness, with no HTTP between them.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import IO, Any

import streamlit as st
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reranker.backends import host
from reranker.core.browser_ids import BROWSER_COOKIE, is_browser_id, new_browser_id
from reranker.core.environment import set_listening_host
from reranker.core.model_names import default_dtype, resolve_model, scored_name
from reranker.sidecar.application import create_app
from reranker.sidecar.in_process import hosted_backend
from reranker.sidecar.settings import Settings

PAGES = Path(__file__).resolve().parents[2] / "app.py"
"""The workbench's entry script (it declares the pages); the one-port server runs it from the checkout."""
API_PREFIXES = ("/api/", "/v1/", "/v2/")
"""Paths under these are the API's even where it has no route (a JSON 404, not a page)."""


class ApiRoutes(BaseRoute):
    """Every path the API answers (its own routes, and anything under API_PREFIXES), handed to it whole."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and (scope["path"].startswith(API_PREFIXES)
                                        or any(r.matches(scope)[0] != Match.NONE for r in self.api.routes)):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.api(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)


class BrowserCookie:
    """Gives a browser without one the cookie by which the pages keep its inputs and results across reloads, closed
    tabs and restarts (workbench.drafts): on a page's HTML, a random id for a year."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_browser_id(_cookies(scope).get(BROWSER_COOKIE)):
            await self.app(scope, receive, send)
            return

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                    cookie = f"{BROWSER_COOKIE}={new_browser_id()}; Path=/; Max-Age=31536000; SameSite=Lax; " \
                             "HttpOnly"
                    message = {**message, "headers": [*headers, (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, with_cookie)


def _cookies(scope: Scope) -> dict[str, str]:
    header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"cookie"), "")
    parsed = SimpleCookie()
    try:
        parsed.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in parsed.items()}


def workbench_app(settings: Settings, data_lock: IO[str] | None = None) -> st.App:
    """The pages and the API as one ASGI app; `data_lock`: the data folder's lock, when the caller took it."""
    api = create_app(settings, data_lock=data_lock)
    opened = hosted_backend(api.state.service)
    if settings.server:  # a gateway: the pages' default server is the one the API scores on, through its queue
        host(settings.server, settings.server_key, opened)
    else:
        host(scored_name(resolve_model(None), default_dtype()), None, opened)

    @asynccontextmanager
    async def lifespan(_app: st.App) -> AsyncIterator[None]:
        async with api.router.lifespan_context(api):
            yield

    return st.App(PAGES, routes=[ApiRoutes(api)], lifespan=lifespan, middleware=[Middleware(BrowserCookie)])


def run(app: st.App, address: str, port: int) -> None:
    """Serve `app` on address:port until Ctrl-C or SIGTERM. The pages, run in this process, learn the address from
    `reranker.core.environment.listening_host()` (beyond loopback, with a key set, they ask for it)."""
    set_listening_host(address)
    sys.argv = [str(PAGES)]  # the pages' script is the one Streamlit's script-level settings belong to
    app.run(config={"server.address": address, "server.port": port, "server.showEmailPrompt": False})
