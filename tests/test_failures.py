"""One family of failures, mapped to HTTP once on the way out and once on the way in: every kind of failure, raised
behind every dialect's path of a real HTTP server, answers its status in that dialect's error shape with its words;
and a client of that server (remote.connection) raises the same kind again, the words kept."""

from __future__ import annotations

import inspect
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import uvicorn
from fastapi import FastAPI, Request

from reranker.core import failures
from reranker.core.failures import (
    BadRequest,
    Conflict,
    InvalidField,
    ModelLoadError,
    NotFound,
    NotReady,
    PromptTooLong,
    QueueClosed,
    QueueFull,
    RequestAbandoned,
    RerankerError,
    ServerFailed,
    TooLarge,
    Unavailable,
    Unreachable,
    UnsupportedMediaType,
    UnsupportedOption,
    WrongKey,
)
from reranker.remote.connection import ServerConnection
from reranker.sidecar.dialects.registry import DIALECTS, TEI, Dialect
from reranker.sidecar.http_errors import install_error_handlers, set_dialect

STATUS = {
    RerankerError: 500, BadRequest: 400, InvalidField: 422, UnsupportedMediaType: 415, UnsupportedOption: 400,
    TooLarge: 413, PromptTooLong: 413, NotFound: 404, Conflict: 409, Unavailable: 503, NotReady: 503,
    QueueFull: 503, QueueClosed: 503, ServerFailed: 502, Unreachable: 502, WrongKey: 502, ModelLoadError: 503,
    RequestAbandoned: 499,
}
"""Every kind of failure and the status it answers. WrongKey and Unreachable are a server behind this one refusing
its key or not answering: the gateway's failure (502), not the client's."""
BACK_AGAIN = {400: BadRequest, 422: BadRequest, 413: TooLarge, 404: NotFound, 409: Conflict, 503: Unavailable}
"""The kind a client raises for a status; any other status is the server's failure (ServerFailed)."""
MESSAGE_FIELD = {"api": ("detail",), "rerank_v1": ("message", "detail"), "cohere": ("message",),
                 "tei": ("error",), "vllm": ("message", ("error", "message")), "bare_rerank": ("error", "message")}
"""Where each dialect's clients read the message."""


def test_the_table_names_every_failure() -> None:
    kinds = {k for _, k in inspect.getmembers(failures, inspect.isclass) if issubclass(k, RerankerError)}
    assert kinds == set(STATUS)


def kind_raised(kind: type[RerankerError], message: str) -> RerankerError:
    return kind(["documents", 0], message) if kind is InvalidField else kind(message)


def app_raising() -> FastAPI:
    """Each dialect's paths (TEI's under /tei, as /rerank picks it from a body) raise the failure a query names."""
    app = FastAPI()
    install_error_handlers(app)

    def route(dialect: Dialect):
        async def fail(kind: str, request: Request) -> None:
            if dialect is TEI:
                set_dialect(request, TEI)
            raise kind_raised(getattr(failures, kind), f"{kind} said in words")
        return fail

    for dialect in DIALECTS:
        for path in dialect.paths or ("/tei",):
            app.add_api_route(path, route(dialect), methods=["POST"])
    app.add_api_route("/api/jobs/x", route(DIALECTS[0]), methods=["POST"])
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    running = uvicorn.Server(uvicorn.Config(app_raising(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(10)


def read(body: dict, field: str | tuple[str, str]) -> object:
    return body[field] if isinstance(field, str) else body[field[0]][field[1]]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@pytest.mark.parametrize("kind", sorted(STATUS, key=lambda k: k.__name__), ids=lambda k: k.__name__)
def test_each_failure_answers_its_status_in_each_dialects_shape(server: str, dialect: Dialect,
                                                                kind: type[RerankerError]) -> None:
    path = (dialect.paths or ("/tei",))[0]
    answer = requests.post(f"{server}{path}", params={"kind": kind.__name__}, timeout=10)
    assert answer.status_code == STATUS[kind]
    body = answer.json()
    for field in MESSAGE_FIELD[dialect.name]:
        said = read(body, field)
        if kind is InvalidField and field == "detail":  # FastAPI's list of field errors, as a 422 has it
            assert said[0]["loc"] == ["body", "documents", 0] and said[0]["msg"] == f"{kind.__name__} said in words"
        else:
            assert said == (f"documents[0]: {kind.__name__} said in words" if kind is InvalidField
                            else f"{kind.__name__} said in words")
    if dialect.name == "tei":
        assert body["error_type"] == ("Overloaded" if kind is QueueFull else
                                      {400: "Validation", 413: "Validation", 415: "Backend", 422: "Validation",
                                       503: "Unhealthy"}.get(STATUS[kind], "Backend"))
    if issubclass(kind, Unavailable) and kind.retry_after:
        assert answer.headers["Retry-After"] == str(kind.retry_after)


@pytest.mark.parametrize("kind", sorted(STATUS, key=lambda k: k.__name__), ids=lambda k: k.__name__)
def test_a_client_raises_the_same_kind_back_with_the_servers_words(server: str, kind: type[RerankerError]) -> None:
    connection = ServerConnection(server, retries=0, kind="test server")
    with pytest.raises(RerankerError) as caught:
        connection.call("POST", "/api/jobs/x", params={"kind": kind.__name__})
    assert type(caught.value) is BACK_AGAIN.get(STATUS[kind], ServerFailed)
    assert f"{kind.__name__} said in words" in str(caught.value) and "test server" in str(caught.value)


def test_the_api_serves_each_dialect_of_the_table_and_no_other_scoring_path() -> None:
    """The routes are made from the table: each dialect's paths are POST routes with its request and answer, and
    every scoring route the API has is one of the table's (a new dialect is its module and one entry)."""
    from reranker.sidecar.application import create_app
    from reranker.sidecar.dialects.registry import SCORING_PATHS
    from reranker.sidecar.settings import Settings

    schema = create_app(Settings()).openapi()  # not started: nothing is loaded
    posted = {path for path, operations in schema["paths"].items() if "post" in operations}
    assert posted - {"/api/jobs", "/api/jobs/{job_id}/retry", "/api/models/load"} == SCORING_PATHS
    for dialect in DIALECTS:
        for path in dialect.paths if dialect.request is not None else ():
            body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
            assert body["$ref"].endswith(f"/{dialect.request.__name__}")
