"""One HTTP connection to a reranking server: a timeout, bounded retries on 503, and one clear error per failure.

Every remote backend talks through a ServerConnection, so each failure reads the same whichever server it is:
it names the server, says what went wrong and what to do about it.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from reranker.core.addresses import shown_address
from reranker.core.failures import (
    BadRequest,
    Conflict,
    NotFound,
    RerankerError,
    ServerFailed,
    TooLarge,
    Unavailable,
    Unreachable,
    WrongKey,
)

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a connection: a wrong address fails fast even where answers may take minutes."""
MAX_RETRY_WAIT = 30.0
"""A Retry-After longer than this is cut to it: a batch should not sleep for minutes on one answer."""


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

    def malformed(self, path: str, what: str) -> ServerFailed:
        return ServerFailed(f"The {self.kind} at {self.shown} gave an answer to {path} that this client cannot read "
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

    def _refusal(self, response: requests.Response, path: str) -> RerankerError:
        """The one place where a server's error status becomes one of our failures (sidecar.http_errors maps them
        back to statuses on the way out)."""
        status, detail = response.status_code, _detail(response)
        if status in (404, 405) and not (_answered_json(response) and detail not in _NO_SUCH_ROUTE):
            status = NO_ROUTE
        elif status not in _REFUSALS:
            status = SERVER_ERROR if status >= 500 else OTHER_REFUSAL
        kind, words = _REFUSALS[status]
        said = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
        return kind(words.format(kind=self.kind, at=self.shown, path=path, said=said, retries=self.retries))


NO_ROUTE, SERVER_ERROR, OTHER_REFUSAL = -1, -2, -3
"""The keys of _REFUSALS that are not one status: an address nothing answers at (a framework's own 404 or 405), any
other 5xx, any other 4xx."""
_WRONG_KEY = (WrongKey, "The {kind} at {at} refused the key ({said}). Fix: set RERANKER_SERVER_KEY (or the key field "
                        "in the sidebar) to that server's API key.")
_NOT_FOUND = (NotFound, "The {kind} at {at} answered {path} with {said}.")
_REFUSED = (BadRequest, "The {kind} at {at} refused the request ({said}).")
_REFUSALS: dict[int, tuple[type[RerankerError], str]] = {
    401: _WRONG_KEY, 403: _WRONG_KEY, 404: _NOT_FOUND, 405: _NOT_FOUND, 400: _REFUSED, 422: _REFUSED,
    409: (Conflict, "The {kind} at {at} cannot do that now ({said})."),
    413: (TooLarge, "The {kind} at {at} found the request too big ({said}). Fix: send fewer or shorter documents at "
                    "a time."),
    503: (Unavailable, "The {kind} at {at} is busy or not ready ({said}), still after {retries} retries. Fix: try "
                       "again later."),
    NO_ROUTE: (ServerFailed, "{at}{path} does not exist ({said}): {at} is not a {kind}, or not of the kind its "
                             "address suggests. Fix: check the address."),
    SERVER_ERROR: (ServerFailed, "The {kind} at {at} failed ({said}). Fix: see that server's log."),
    OTHER_REFUSAL: (ServerFailed, "The {kind} at {at} refused the request ({said})."),
}
"""A server's error status -> the failure it is and its words, for every server this client talks to."""


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
