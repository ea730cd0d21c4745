"""ASGI middleware: body size limits, the API key, and per-request metrics. Their refusals (413, 401) take the error
shape of the dialect the path speaks, as every other error does (http_errors)."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reranker.sidecar.dialects.registry import dialect_of_path
from reranker.sidecar.http_errors import error_answer
from reranker.sidecar.telemetry import SidecarMetrics

# A body over the limit is still read (and thrown away) up to this size before the 413 goes out, so that
# ordinary clients, which send the whole body before reading the answer, see the 413 and not a reset.
_DRAIN_BYTES = 256 * 1024 * 1024


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str,
                 headers: dict[str, str]) -> None:
    """Answer `status` with `message` in the error shape of the path's dialect."""
    await error_answer(dialect_of_path(scope["path"]), status, message, headers=headers)(scope, receive, send)


class BodyLimitMiddleware:
    """413 for a body over its route's limit, whether announced by Content-Length or sent chunked."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], tuple[int, str]]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.limit_for(scope)
        message = (f"the request body is larger than the limit of {limit:,} bytes ({setting}); "
                   "send fewer or shorter documents, or split the work into several requests or jobs")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            if int(declared) <= _DRAIN_BYTES:
                await _drain(receive)
            await refuse(scope, receive, send, 413, message, {"connection": "close"})
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    if msg.get("more_body", False):
                        await _drain(receive, _DRAIN_BYTES - received)
                    raise HTTPException(413, message)
            return msg

        await self.app(scope, limited_receive, send)


async def _drain(receive: Receive, budget: int = _DRAIN_BYTES) -> None:
    while budget > 0:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body", False):
            return
        budget -= len(msg.get("body", b""))


OPEN_PATHS = ("/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
"""What answers without the key: the health check, and the /docs page with its schema, so that a browser can
open it and use its Authorize button; every endpoint the page calls still wants the key."""
OPEN_PREFIXES = ("/static-offline-docs/",)


class BearerAuthMiddleware:
    """Every path but the open ones needs `Authorization: Bearer <key>`; the key is compared in constant time."""

    def __init__(self, app: ASGIApp, key: str, open_paths: tuple[str, ...] = OPEN_PATHS,
                 open_prefixes: tuple[str, ...] = OPEN_PREFIXES) -> None:
        self.app = app
        self.key = key.encode()
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or scope["path"].startswith(self.open_prefixes):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            await self.app(scope, receive, send)
            return
        detail = ("wrong API key" if header else "missing API key") + \
            ": send the header 'Authorization: Bearer <key>' with the key in RERANKER_API_KEY"
        await refuse(scope, receive, send, 401, detail, {"www-authenticate": "Bearer"})


class MetricsMiddleware:
    """Counts every answer by route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: SidecarMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if scope.get(CLIENT_GONE):
                status = 499  # nginx's "client closed request": no answer was sent
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)


CLIENT_GONE = "reranker.client_gone"
"""Set in the scope of a request cancelled because its client disconnected."""


class CancelOnDisconnect:
    """A scoring request (a POST to one of `paths`) whose client disconnects before its answer is cancelled: the
    handler's wait is cancelled, so the request queue scores no more of it (RequestQueue.abandon).

    The app reads the body through its own receive; once the whole body is in, this listens on receive for the
    client's disconnect while the handler runs (uvicorn tells it as soon as the connection closes)."""

    def __init__(self, app: ASGIApp, paths: frozenset[str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") not in self.paths:
            await self.app(scope, receive, send)
        else:
            await self._cancelled_on_disconnect(scope, receive, send)

    async def _cancelled_on_disconnect(self, scope: Scope, receive: Receive, send: Send) -> None:
        body_read = asyncio.Event()

        async def reading() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read.set()
            return message

        answering = asyncio.Event()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answering.set()
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, reading, sending))

        async def listen() -> None:
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            if not answering.is_set():  # (once the answer is under way, the disconnect is its end)
                scope[CLIENT_GONE] = True
                handler.cancel()

        listener = asyncio.ensure_future(listen())
        try:
            await handler
        except asyncio.CancelledError:
            if not scope.get(CLIENT_GONE):
                raise
        finally:
            listener.cancel()
