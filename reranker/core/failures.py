"""What can go wrong, said once: one family of failures, each in the words of the person who asked (what went wrong
and what to do instead), whoever raises it: the engine, a remote server's client, the API's service or a page.

Nothing here knows HTTP. The API maps each kind to a status on the way out (`reranker.sidecar.http_errors`), a
client maps a server's status to a kind on the way in (`reranker.remote.connection`); in between a failure passes
through unchanged, so the pages, the command line and the API tell the same failure in the same words.

    RerankerError
    ├── BadRequest                 the request cannot be done as asked (400)
    │   ├── InvalidField           one field is missing or wrong (422)
    │   ├── UnsupportedMediaType   a body in a content type this does not read (415)
    │   ├── UnsupportedOption      an option this backend cannot honour (400)
    │   └── TooLarge               over a size limit (413)
    │       └── PromptTooLong      a prompt that would have to be cut, and its query asked not to cut it
    ├── NotFound                   no such thing (a job id) (404)
    ├── Conflict                   not in a state that allows this (409)
    ├── Unavailable                cannot score now; retry_after (503)
    │   ├── NotReady, QueueFull, QueueClosed
    ├── ServerFailed               a server this one calls failed or cannot be used (502)
    │   ├── Unreachable, WrongKey
    ├── ModelLoadError             the model or tokenizer could not be loaded
    └── RequestAbandoned           the client went away before its answer
"""

from __future__ import annotations

from collections.abc import Sequence


class RerankerError(Exception):
    """Something asked of the reranker could not be done; `str(error)` is the message for the person who asked."""


class BadRequest(RerankerError):
    """The request asks for something that cannot be done as asked (a table that cannot be read, a text a server
    refused, say)."""


class InvalidField(BadRequest):
    """One field of the request is missing or wrong; `location` names it as a path of keys and indexes."""

    def __init__(self, location: Sequence[str | int], message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.location = tuple(location)
        self.kind = kind


class UnsupportedMediaType(BadRequest):
    """The body came in a content type this operation does not read."""


class UnsupportedOption(BadRequest, ValueError):
    """A query asks for something this backend cannot do (a per-request truncation on a vLLM server, say)."""


class TooLarge(BadRequest):
    """Over a size limit: the message names the limit and its setting, or says to send less at a time."""


class PromptTooLong(TooLarge, ValueError):
    """A prompt would have to be cut to fit the model's max length, and its query asked not to cut it."""


class NotFound(RerankerError):
    """No such thing (a job id nobody knows)."""


class Conflict(RerankerError):
    """The thing is not in a state that allows this (results of a running job, cancelling a finished one)."""


class Unavailable(RerankerError):
    """Scoring cannot be done now; `retry_after` seconds is a fair wait before trying again (None: unknown)."""

    retry_after: int | None = None


class NotReady(Unavailable):
    """The model is still loading, or failed to load; the message says which."""

    retry_after = 5


class QueueFull(Unavailable):
    """Too many requests are already waiting for the model."""

    retry_after = 1


class QueueClosed(Unavailable):
    """The server is shutting down; the request was not scored."""


class ServerFailed(RerankerError):
    """A server this one calls failed, answered what cannot be read, or is not what its address suggests; the
    message names that server and the fix."""


class Unreachable(ServerFailed):
    """No answer at all: the address is wrong, the server is down, or it took longer than the timeout."""


class WrongKey(ServerFailed):
    """The server refused the key it was sent (401 or 403)."""


class ModelLoadError(RerankerError):
    """The model or tokenizer could not be loaded; the message says where it looked and how to fix it."""


class RequestAbandoned(RerankerError):
    """The request's client went away before its answer: the rest of it was not scored (nobody reads this)."""


BackendError = RerankerError
"""The family's name before it covered more than remote servers; kept for code that catches it."""


def failure_text(error: BaseException) -> str:
    """What every entry point says when something could not be done: our own failure's message, else the error's
    type and words."""
    if isinstance(error, RerankerError):
        return str(error)
    return f"{type(error).__name__}: {error}"
