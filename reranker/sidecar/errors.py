"""What can go wrong in a sidecar operation, said without HTTP: `http_errors` maps each kind to a status code.

The service raises these; `str(error)` is the message for the person behind the client, so it says what was
wrong and what to do instead.
"""

from __future__ import annotations

from collections.abc import Sequence


class ServiceError(Exception):
    """A request the sidecar will not or cannot carry out."""


class InvalidInput(ServiceError):
    """The request asks for something that cannot be done as asked (a table that cannot be read, say)."""


class InvalidField(ServiceError):
    """One field of the request is missing or wrong; answered like a body that failed validation."""

    def __init__(self, location: Sequence[str | int], message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.location = tuple(location)
        self.kind = kind


class NotFound(ServiceError):
    """No such job."""


class Conflict(ServiceError):
    """The job is not in a state that allows this (results of a running job, cancelling a finished one)."""


class TooLarge(ServiceError):
    """Over a size limit; the message names the limit and its setting."""


class UnsupportedMediaType(ServiceError):
    """The body came in a content type this operation does not read."""


class UpstreamFailed(ServiceError):
    """The sidecar is a gateway and the server behind it failed; the message names that server and the fix."""


class Unavailable(ServiceError):
    """The sidecar cannot score now; `retry_after` seconds is a fair wait before trying again (None: unknown)."""

    retry_after: int | None = None


class NotReady(Unavailable):
    """The model is still loading, or failed to load; the message says which."""

    retry_after = 5


class QueueFull(Unavailable):
    """Too many requests are already waiting for the model."""

    retry_after = 1


class QueueClosed(Unavailable):
    """The sidecar is shutting down; the request was not scored."""


class RequestAbandoned(ServiceError):
    """The request's client went away before its answer: the rest of it was not scored (nobody reads this)."""
