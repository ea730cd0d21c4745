"""The one interface every front end scores through, and what a backend says about itself.

A backend judges (query, document) pairs: the Qwen3 engine in this process (`reranker.engine`) or a server
(`reranker.remote`). Front ends are typed against `RerankBackend` and get one from `reranker.backends.open_backend`,
so "which machine does the arithmetic" is a setting, not a code path. They never test a backend's class: they ask
its `capabilities`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

from reranker.core.failures import UnsupportedOption
from reranker.core.ranking import Judgement, Progress, Query, RankedDocument, rank_each

QUERY_OPTIONS = frozenset({"document_tokens", "keep_document_end", "refuse_truncation", "passage_tokens",
                           "max_passages"})
"""The Query fields that say how to fit a document that is too long; a backend honours some or all of them (one
that does not read passages itself has them made on the client: RemoteBackend)."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do and where it runs: what the front ends ask instead of testing its class."""

    kind: str
    """What it is, in words: "Qwen3 engine", "Qwen-Ranker sidecar", "vLLM server", ..."""
    where: str
    """Where it runs, in words for a status line: "in this process", or "server <address>"."""
    address: str | None = None
    """The server's base address as messages show it (without credentials); None when it runs in this process."""
    in_process: bool = False
    """The model's weights are in this process (another model may be opened beside it, memory permitting)."""
    instruction: bool = True
    """A query's own instruction is honoured (a Cohere-style API has no field for one)."""
    query_options: frozenset[str] = QUERY_OPTIONS
    """Which of QUERY_OPTIONS it honours; a query asking for another is refused with UnsupportedOption."""
    jobs: bool = False
    """It runs background jobs for big tables: `jobs()` answers."""
    extra_models: bool = False
    """It offers other models besides its own: `extra_models()`, `load_model()` and `with_model()` answer."""
    yields_between_passes: bool = False
    """Its `progress` callback runs between forward passes, on the thread that called judge_many, and may call
    judge_many again (the request queue serves a small request in between a big one's passes this way) or raise
    StopScoring (judge_many then raises ScoringStopped with the pairs scored so far)."""
    max_length: int | None = None
    """Tokens of one pair (query, document and any prompt) the model reads at most, where the backend knows it."""


class JobService(Protocol):
    """Background jobs where the model is (a Qwen-Ranker sidecar over HTTP, or under ./start.sh this process's own
    job store): big tables scored where they survive a closed page; each answer is the JSON of the API's job routes
    (docs/API.md, "Jobs"), each failure a RerankerError."""

    shown: str
    """Where the jobs run, as pages show it: the server's address, or "this workbench"."""

    def submit_table(self, filename: str, data: bytes, columns: Mapping[str, str | None],
                     instruction: str | None = None, passage_tokens: int | None = None,
                     max_passages: int | None = None) -> dict[str, Any]: ...
    def jobs(self, limit: int = 50) -> list[dict[str, Any]]: ...
    def job(self, job_id: str) -> dict[str, Any]: ...
    def cancel(self, job_id: str) -> dict[str, Any]: ...
    def retry(self, job_id: str) -> dict[str, Any]: ...
    def results_csv(self, job_id: str) -> bytes: ...
    def results_json(self, job_id: str) -> dict[str, Any]: ...


class RerankBackend(ABC):
    """Judges (query, document) pairs. Subclasses give `model_name`, `capabilities` and `judge_many`; scoring and
    ranking are built on `judge_many` here, once for every backend."""

    model_name: str

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities:
        ...

    @abstractmethod
    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        """Each query's documents judged, in input order. Raises UnsupportedOption for a query option this
        backend cannot honour, and RerankerError when a server fails."""

    def describe(self) -> dict[str, object]:
        """What a status line shows: `model`, `where` and `kind`, and whatever else the backend knows."""
        return {"model": self.model_name, "where": self.capabilities.where, "kind": self.capabilities.kind}

    def judge(self, query: str, documents: Sequence[str], instruction: str | None = None,
              progress: Progress | None = None) -> list[Judgement]:
        return self.judge_many([Query(query, documents, instruction)], progress)[0]

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None,
              progress: Progress | None = None) -> list[float]:
        """P("yes") for each document, in input order. `instruction` None or blank: the model card's default,
        "Given a web search query, retrieve relevant passages that answer the query"."""
        return [j.score for j in self.judge(query, documents, instruction, progress)]

    def rerank(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]:
        """P("yes") for each document, in input order (not sorted: `rank` sorts): `score` by the name tutorials
        use. `instruction` None or blank: the model card's default."""
        return self.score(query, documents, instruction)

    def rank(self, query: str, documents: Sequence[str], instruction: str | None = None, top_k: int | None = None,
             progress: Progress | None = None) -> list[RankedDocument]:
        """Documents best first, cut to top_k."""
        return self.rank_many([Query(query, documents, instruction)], top_k, progress)[0]

    def rank_many(self, queries: Sequence[Query], top_k: int | None = None,
                  progress: Progress | None = None) -> list[list[RankedDocument]]:
        """Each query's documents best first (equal logits keep input order), cut to top_k."""
        return rank_each(queries, self.judge_many(queries, progress), top_k)

    def jobs(self) -> JobService:
        """The server's background jobs, when `capabilities.jobs` says it runs them."""
        raise UnsupportedOption(f"the {self.capabilities.kind} ({self.capabilities.where}) runs no jobs")

    def extra_models(self) -> dict[str, dict[str, str | None]]:
        """The other models it offers, each with its `state` (not loaded, loading, ready, failed), the memory it
        `needs` and its `error`; {} when it offers none."""
        return {}

    def load_model(self, name: str) -> None:
        """Start loading the extra model `name` (it answers once `extra_models()` says ready)."""
        raise UnsupportedOption(f"the {self.capabilities.kind} ({self.capabilities.where}) offers no other models")

    def with_model(self, name: str) -> RerankBackend:
        """The same server, scoring with its extra model `name`."""
        raise UnsupportedOption(f"the {self.capabilities.kind} ({self.capabilities.where}) offers no other models")


class StopScoring(Exception):
    """Raised by a `progress` callback to stop a backend whose capabilities say `yields_between_passes`."""


class ScoringStopped(Exception):
    """A judge_many stopped by StopScoring: `partial` is shaped like its answer, None for each pair not scored."""

    def __init__(self, partial: list[list[Judgement | None]]) -> None:
        super().__init__("scoring was stopped between forward passes")
        self.partial = partial


def goes_on(progress: Progress, done: int, total: int) -> bool:
    """Tell `progress` between two forward passes; False when it asks to stop (StopScoring)."""
    try:
        progress(done, total)
    except StopScoring:
        return False
    return True


def unstoppable(progress: Progress | None) -> Progress | None:
    """`progress`, its StopScoring ignored (passages stand for their document only all together)."""
    if progress is None:
        return None

    def told(done: int, total: int) -> None:
        with suppress(StopScoring):
            progress(done, total)

    return told
