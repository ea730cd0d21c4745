"""Backends opened in the background: once, failures remembered, the least recently used let go."""

import threading

from reranker.workbench.backend_openings import Openings


class Opened:
    def __init__(self, name: str) -> None:
        self.model_name = name


def test_opened_once_and_the_least_recently_used_let_go():
    calls: list[str] = []

    def open_backend(spec: str, key: str | None) -> Opened:
        calls.append(spec)
        return Opened(spec)

    openings = Openings(open_backend, str, keep=2)
    for spec in ("a", "b", "a", "c"):  # "a" is used again after "b", so "b" is the one let go for "c"
        assert openings.get((spec, None)).wait(5)
    assert openings.get(("a", None)).backend.model_name == "a"
    assert calls == ["a", "b", "c"]
    openings.get(("b", None)).wait(5)
    assert calls == ["a", "b", "c", "b"]


def test_a_failure_is_remembered_until_forgotten_and_a_server_is_asked_again_later():
    attempts: list[str] = []

    def open_backend(spec: str, key: str | None) -> Opened:
        attempts.append(spec)
        raise ConnectionError(f"{spec} is down")

    openings = Openings(open_backend, lambda e: f"said: {e}")
    first = openings.get(("model", None))
    assert first.wait(5) and first.backend is None and first.error == "said: model is down"
    assert openings.get(("model", None)) is first and attempts == ["model"]
    openings.forget(("model", None))
    assert openings.get(("model", None)).wait(5) and attempts == ["model", "model"]
    server = openings.get(("http://x", None), retry_failure_after=0.0)
    server.wait(5)
    again = openings.get(("http://x", None), retry_failure_after=0.0)
    assert again is not server


def test_pages_never_wait_for_a_slow_opening():
    release = threading.Event()

    def open_backend(spec: str, key: str | None) -> Opened:
        release.wait(10)
        return Opened(spec)

    opening = Openings(open_backend, str).get(("slow", None))
    assert not opening.wait(0.2) and not opening.done and opening.backend is None
    release.set()
    assert opening.wait(5) and opening.backend.model_name == "slow" and opening.seconds > 0
