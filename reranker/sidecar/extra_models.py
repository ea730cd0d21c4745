"""The models a sidecar may load besides its own (RERANKER_EXTRA_MODELS): each on the first request that names it,
after checking from its config.json that it fits in free memory, with a queue of its own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from reranker.core.backend import RerankBackend
from reranker.core.failures import BadRequest, NotReady, failure_text
from reranker.engine.memory import fit_of
from reranker.sidecar.request_queue import RequestQueue

log = logging.getLogger("reranker.sidecar")


@dataclass
class _Extra:
    queue: RequestQueue | None = None
    error: str | None = None


class ExtraModels:
    def __init__(self, names: tuple[str, ...], open_model: Callable[[str], RerankBackend],
                 make_queue: Callable[[RerankBackend], RequestQueue], bytes_per_parameter: int = 4) -> None:
        self.names = names
        self._open_model = open_model
        self._make_queue = make_queue
        self._bytes_per_parameter = bytes_per_parameter
        self._lock = threading.Lock()
        self._extras: dict[str, _Extra] = {}

    def start(self, name: str) -> _Extra:
        """Begin loading the extra model `name` unless it is loaded or loading; BadRequest (400) when it is not
        one of them or does not fit in free memory."""
        if name not in self.names:
            raise BadRequest(f"{name!r} is not one of this sidecar's extra models "
                               f"({', '.join(self.names) or 'none: RERANKER_EXTRA_MODELS is not set'})")
        with self._lock:
            extra = self._extras.get(name)
            if extra is None:
                self._check_fits(name)
                extra = self._extras[name] = _Extra()
                threading.Thread(target=self._load, args=(name, extra), name=f"load {name}", daemon=True).start()
            return extra

    def queue(self, name: str) -> RequestQueue:
        """The queue of the extra model `name`, loading it on first use. NotReady (503) while it loads;
        BadRequest (400) when it does not fit in memory or failed to load."""
        extra = self.start(name)
        if extra.error is not None:
            raise BadRequest(f"the model {name} could not be loaded: {extra.error}")
        if extra.queue is None:
            raise NotReady(f"the model {name} is loading; retry in a few seconds (GET /health lists the models)")
        return extra.queue

    def states(self) -> dict[str, dict[str, str | None]]:
        """Each extra model's state (not loaded, loading, ready or failed), the memory it needs (when its
        config.json is at hand) and why it failed."""
        with self._lock:
            extras = dict(self._extras)
        return {name: {"state": _state(extras.get(name)), "needs": self._needs(name),
                       "error": extras[name].error if name in extras else None} for name in self.names}

    def _needs(self, name: str) -> str | None:
        needed = fit_of(name, self._bytes_per_parameter).needed
        return None if needed is None else needed.text()

    def close(self) -> None:
        for extra in self._extras.values():
            if extra.queue is not None:
                extra.queue.close()

    def _check_fits(self, name: str) -> None:
        fit, on_machine = fit_of(name, self._bytes_per_parameter), "on the sidecar's machine"
        if not fit.fits:
            raise BadRequest(f"the model {fit.refusal(on_machine)}")

    def _load(self, name: str, extra: _Extra) -> None:
        try:
            extra.queue = self._make_queue(self._open_model(name))
            log.info("extra model ready: %s", name)
        except Exception as e:  # noqa: BLE001 - told to the next request that names it
            extra.error = failure_text(e)
            log.error("the extra model %s could not be loaded: %s", name, e)


def _state(extra: _Extra | None) -> str:
    if extra is None:
        return "not loaded"
    return "failed" if extra.error is not None else "ready" if extra.queue is not None else "loading"
