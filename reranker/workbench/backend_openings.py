"""Backends opened in background threads: a model can take minutes to download and load, and a server seconds to
answer, and no page should wait for either. One Openings per process (the frame keeps it in st.cache_resource), so
every session shares each loaded model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from reranker.core.backend import RerankBackend

Spec = tuple[str, str | None]
"""What a backend is opened from: (model or server address, key)."""


class Opening:
    """One backend being opened, or opened, or that failed to open (with the message to show)."""

    def __init__(self, spec: Spec, open_backend: Callable[[str, str | None], RerankBackend],
                 failure_text: Callable[[BaseException], str]) -> None:
        self.spec = spec
        self.started = time.monotonic()
        self.finished: float | None = None
        self.backend: RerankBackend | None = None
        self.error: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._open, args=(open_backend, failure_text), daemon=True,
                                        name=f"open {spec[0]}")
        self._thread.start()

    def _open(self, open_backend: Callable[[str, str | None], RerankBackend],
              failure_text: Callable[[BaseException], str]) -> None:
        try:
            self.backend = open_backend(*self.spec)
        except BaseException as e:  # noqa: BLE001 - whatever stops it opening is told to the user
            try:
                self.error = failure_text(e)
            except Exception:  # noqa: BLE001 - a message that cannot be worded is still a failure
                self.error = f"{type(e).__name__}: {e}"
        finally:
            self.finished = time.monotonic()
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def seconds(self) -> float:
        """How long it has taken so far (or took)."""
        return (self.finished or time.monotonic()) - self.started

    def seconds_since_end(self) -> float:
        return time.monotonic() - self.finished if self.finished is not None else 0.0

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for it to end; whether it has."""
        return self._done.wait(seconds)


class Openings:
    """The backends of this process by spec: opened once, failures remembered until forgotten (Try again), at most
    `keep` backends opened or opening (the one used longest ago let go first)."""

    def __init__(self, open_backend: Callable[[str, str | None], RerankBackend],
                 failure_text: Callable[[BaseException], str], keep: int = 2) -> None:
        self._open_backend = open_backend
        self._failure_text = failure_text
        self._keep = keep
        self._lock = threading.Lock()
        self._openings: dict[Spec, Opening] = {}

    def get(self, spec: Spec, retry_failure_after: float | None = None) -> Opening:
        """The opening of `spec`, started now if there is none; a failure older than `retry_failure_after` seconds
        is tried again (a server may have come up since)."""
        with self._lock:
            opening = self._openings.pop(spec, None)
            if (opening is not None and opening.done and opening.error is not None
                    and retry_failure_after is not None and opening.seconds_since_end() > retry_failure_after):
                opening = None
            if opening is None:
                self._let_go_of_oldest()
                opening = Opening(spec, self._open_backend, self._failure_text)
            self._openings[spec] = opening  # last: the most recently used
            return opening

    def has(self, spec: Spec) -> bool:
        """Whether `spec` is opened, opening or remembered as failed (so `get` would not start anything)."""
        with self._lock:
            return spec in self._openings

    def forget(self, spec: Spec) -> None:
        with self._lock:
            self._openings.pop(spec, None)

    def _let_go_of_oldest(self) -> None:
        """Room for one more: forget the least recently used backends opened or opening beyond keep - 1 (a thread
        still loading one finishes, and its model is then let go)."""
        held = [s for s, o in self._openings.items() if o.backend is not None or not o.done]
        for spec in held[:max(len(held) - self._keep + 1, 0)]:
            del self._openings[spec]
