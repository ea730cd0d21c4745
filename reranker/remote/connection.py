"""One HTTP connection to a reranking server: a timeout, bounded retries on 503, and one clear error per failure.

Every remote backend talks through a ServerConnection, so each failure reads the same whichever server it is:
it names the server, says what went wrong and what to do about it.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from reranker.core.addresses import shown_address
from reranker.core.backend import BackendError, RequestRefused, RequestTooBig, ServerBusy

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a connection: a wrong address fails fast even where answers may take minutes."""
MAX_RETRY_WAIT = 30.0
"""A Retry-After longer than this is cut to it: a batch should not sleep for minutes on one answer."""


class Unreachable(BackendError):
    """No answer at all: the address is wrong, the server is down, or it took longer than the timeout."""


class WrongKey(BackendError):
    """The server answered 401 or 403."""


class NotFound(BackendError):
    """The server has no such thing (a job id it does not know, say): a 404 with its own reason."""


class Conflict(BackendError):
    """The server answered 409: the thing is not in a state that allows this (results of a running job, say)."""


_NO_SUCH_ROUTE = ("", "Not Found", "Method Not Allowed")
"""What a web framework says for an address it has no route for (Starlette, FastAPI), as opposed to a server's own
404 about one of its things."""


class ServerConnection:
    """url: the server's base address; key: sent as `Authorization: Bearer <key>` when given."""

    def __init__(self, url: str, key: str | None = None, timeout: float = 120.0, retries: int = 3,
                 kind: str = "reranking server") -> None:
        self.url = url.rstrip("/")
        self.shown = shown_address(self.url)
        """The address as messages show it (without a user:password part)."""
        self.key = key
        self.timeout = timeout
        self.retries = retries
        self.kind = kind
        self._session = requests.Session()
        if key:
            self._session.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def probe(self, path: str) -> tuple[int, Any]:
        """(status, JSON body or None) of one GET, whatever the status: for telling what kind of server this is.
        Only an unreachable server or a refused key raises."""
        response = self._send("GET", path)
        if response.status_code in (401, 403):
            raise self._refusal(response, path)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("POST", path, json=body)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's JSON; a 503 is retried up to `retries` times after its Retry-After (else 1, 2, 4 s)."""
        response = self._answer(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise self.malformed(path, f"not JSON: {response.text[:200]!r}") from None

    def content(self, method: str, path: str, **kwargs: Any) -> bytes:
        """The answer's bytes (a CSV, say), with the same retries and errors as `call`."""
        return self._answer(method, path, **kwargs).content

    def with_timeout(self, timeout: float) -> ServerConnection:
        """The same server and key, answers awaited at most `timeout` seconds."""
        return ServerConnection(self.url, self.key, timeout, self.retries, self.kind)

    def _answer(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        for attempt in range(self.retries + 1):
            response = self._send(method, path, **kwargs)
            if response.status_code == 503 and attempt < self.retries:
                time.sleep(_retry_wait(response, attempt))
                continue
            if response.status_code >= 400:
                raise self._refusal(response, path)
            return response
        raise AssertionError("unreachable")

    def malformed(self, path: str, what: str) -> BackendError:
        return BackendError(f"The {self.kind} at {self.shown} gave an answer to {path} that this client cannot read "
                            f"({what}). Fix: check that {self.shown} is a {self.kind}, and its version.")

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            timeout = (min(CONNECT_TIMEOUT, self.timeout), self.timeout)
            return self._session.request(method, self.url + path, timeout=timeout, **kwargs)
        except requests.Timeout:
            raise Unreachable(f"The {self.kind} at {self.shown} did not answer {path} within {self.timeout:g} s. "
                               "Fix: send fewer documents at a time, or give it a longer timeout.") from None
        except requests.RequestException as e:
            raise Unreachable(f"Could not reach the {self.kind} at {self.shown} ({type(e).__name__}). Fix: check the "
                               "address and that the server is running and reachable from here.") from None

    def _refusal(self, response: requests.Response, path: str) -> BackendError:
        status, detail = response.status_code, _detail(response)
        said = f"HTTP {status}" + (f": {detail}" if detail else "")
        if status in (401, 403):
            return WrongKey(f"The {self.kind} at {self.shown} refused the key ({said}). Fix: set "
                                "RERANKER_SERVER_KEY (or the key field in the sidebar) to that server's API key.")
        if status in (404, 405) and _answered_json(response) and detail not in _NO_SUCH_ROUTE:  # no such job, say
            return NotFound(f"The {self.kind} at {self.shown} answered {path} with {said}.")
        if status in (404, 405):
            return BackendError(f"{self.shown}{path} does not exist ({said}): {self.shown} is not a {self.kind}, or "
                                "not of the kind its address suggests. Fix: check the address.")
        if status == 413:
            return RequestTooBig(f"The {self.kind} at {self.shown} found the request too big ({said}). Fix: send "
                                 "fewer or shorter documents at a time.")
        if status == 503:
            return ServerBusy(f"The {self.kind} at {self.shown} is busy or not ready ({said}), still after "
                                f"{self.retries} retries. Fix: try again later.")
        if status == 409:
            return Conflict(f"The {self.kind} at {self.shown} cannot do that now ({said}).")
        if status >= 500:
            return BackendError(f"The {self.kind} at {self.shown} failed ({said}). Fix: see that server's log.")
        if status in (400, 422):
            return RequestRefused(f"The {self.kind} at {self.shown} refused the request ({said}).")
        return BackendError(f"The {self.kind} at {self.shown} refused the request ({said}).")


def _retry_wait(response: requests.Response, attempt: int) -> float:
    try:
        wait = float(response.headers.get("Retry-After", ""))
    except ValueError:
        wait = 2.0 ** attempt
    return min(max(wait, 0.0), MAX_RETRY_WAIT)


def _detail(response: requests.Response) -> str:
    """The server's own words, from whichever error shape it uses (ours, Cohere's, vLLM's, TEI's)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        for field in ("message", "detail", "error"):
            value = body.get(field)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value:
                return value[:300]
    return str(body)[:300]


def _answered_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("content-type", "").lower()
