"""Judgements remembered per pair, so a pair is scored at most once: `JudgementStore.judge_many` is
`backend.judge_many`, but the pairs judged before are answered from the store and only the others reach the backend.

One store, two storages, chosen when it is made:

- `JudgementStore.in_memory()`: a dict, the oldest pairs forgotten past `max_pairs`. The workbench keeps one per
  browser session (`widgets.score_cache()`): re-running with one document added scores only that document; two
  instructions over the same documents share forward passes; a cancelled run keeps what it scored.
- `JudgementStore(path)`: a SQLite file (`judgements.sqlite3` in the data folder for `python -m reranker
  evaluate`), written a chunk of CHUNK_PAIRS pairs at a time, so an evaluation that is stopped, or killed, half-way
  resumes where it was (a kill loses at most one chunk) and a second one over the same pairs costs nothing.

A pair is filed under `pair_key`: what decides its judgement (the model and where it runs, the resolved
instruction, the query, the document, how a long document is cut, and whether it is read as passages), hashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from reranker.core.backend import RerankBackend, ScoringStopped, StopScoring
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import Judgement, Passage, Progress, Query
from reranker.formats.sqlite_files import open_sqlite

CHUNK_PAIRS = 64
"""Pairs a store on disk sends to the backend, and commits, at a time."""
MEMORY_MAX_PAIRS = 200_000
"""Pairs a store in memory keeps by default (a judgement is a few hundred bytes)."""
_SQL_VARIABLES = 500
"""Keys looked up per SELECT (SQLite caps the variables of one statement)."""

Position = tuple[int, int]
"""A pair's place in a judge_many call: (query index, document index)."""


def backend_key(backend: RerankBackend) -> str:
    """What a backend's judgements are filed under: its model and where it runs (the same model on a server may not
    count tokens, or cut documents, as this process does)."""
    return f"{backend.model_name} ({backend.capabilities.where})"


def pair_key(model: str, q: Query, document: str) -> str:
    """The one key of a pair's judgement, `model` being backend_key's. It is the key of every judgements.sqlite3
    written since the first: change it and the judgements on disk are not found (they are scored again)."""
    what = [model, resolve_instruction(q.instruction), q.query, document, q.document_tokens, q.keep_document_end]
    if q.passage_tokens is not None:  # keys of judgements without passages stay as they were before passages
        what += [q.passage_tokens, q.max_passages]
    return hashlib.sha256(json.dumps(what, ensure_ascii=False).encode("utf-8")).hexdigest()


class JudgementStorage(Protocol):
    """Where a JudgementStore keeps its judgements, by pair_key."""

    def found(self, keys: Collection[str]) -> dict[str, Judgement]:
        """The judgements kept of `keys` (the others are left out)."""
        ...

    def keep(self, fresh: Mapping[str, Judgement]) -> None:
        """Keep these judgements (a store on disk has them committed when this returns)."""
        ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


class MemoryJudgements:
    """Judgements in a dict, in the order they were scored; past `max_pairs`, the oldest are forgotten."""

    def __init__(self, max_pairs: int = MEMORY_MAX_PAIRS) -> None:
        self.max_pairs = max_pairs
        self._judgements: dict[str, Judgement] = {}

    def found(self, keys: Collection[str]) -> dict[str, Judgement]:
        return {k: self._judgements[k] for k in keys if k in self._judgements}

    def keep(self, fresh: Mapping[str, Judgement]) -> None:
        self._judgements.update(fresh)
        for k in list(self._judgements)[:max(len(self._judgements) - self.max_pairs, 0)]:
            del self._judgements[k]

    def __len__(self) -> int:
        return len(self._judgements)

    def close(self) -> None:
        pass


class SqliteJudgements:
    """Judgements in a SQLite file: table `judgements` (key, score, logit, tokens, truncated), as every version has
    written it, and beside it `judgement_passages` (key, passages as JSON) for the pairs read as passages, which
    files written before passages were kept simply lack (those pairs then come back without their passages)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = open_sqlite(self.path)
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, score REAL, logit REAL, "
                             "tokens INTEGER, truncated INTEGER)")
            self._db.execute("CREATE TABLE IF NOT EXISTS judgement_passages (key TEXT PRIMARY KEY, passages TEXT)")

    def found(self, keys: Collection[str]) -> dict[str, Judgement]:
        found: dict[str, Judgement] = {}
        keys = list(keys)
        for start in range(0, len(keys), _SQL_VARIABLES):
            part = keys[start:start + _SQL_VARIABLES]
            rows = self._db.execute(
                "SELECT j.key, j.score, j.logit, j.tokens, j.truncated, p.passages FROM judgements j "
                f"LEFT JOIN judgement_passages p ON p.key = j.key WHERE j.key IN ({','.join('?' * len(part))})", part)
            for key, score, logit, tokens, truncated, passages in rows:
                found[key] = Judgement(score, logit, tokens, None if truncated is None else bool(truncated),
                                       None if passages is None else tuple(Passage(*p) for p in json.loads(passages)))
        return found

    def keep(self, fresh: Mapping[str, Judgement]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO judgements (key, score, logit, tokens, truncated) "
                                 "VALUES (?, ?, ?, ?, ?)",
                                 [(k, j.score, j.logit, j.tokens, j.truncated) for k, j in fresh.items()])
            self._db.executemany("INSERT OR REPLACE INTO judgement_passages (key, passages) VALUES (?, ?)",
                                 [(k, json.dumps([[p.start, p.end, p.score, p.logit] for p in j.passages]))
                                  for k, j in fresh.items() if j.passages is not None])

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]

    def close(self) -> None:
        self._db.close()


class JudgementStore:
    """Like a backend's judge_many, but each pair is scored at most once (the module says where they are kept)."""

    def __init__(self, storage: JudgementStorage | Path | str, chunk_pairs: int | None = CHUNK_PAIRS) -> None:
        """storage: a SQLite file's path, or a storage; chunk_pairs: pairs sent to the backend, and kept, at a time
        (None: all the missing pairs in one call)."""
        self.storage: JudgementStorage = (SqliteJudgements(storage) if isinstance(storage, Path | str)
                                          else storage)
        self.chunk_pairs = chunk_pairs
        self.backend_calls = 0
        """judge_many calls made on the backend; stays put when everything asked for was kept."""
        self.pairs_scored = 0
        """Pairs this store had a backend score (the rest it answered itself)."""

    @classmethod
    def in_memory(cls, max_pairs: int = MEMORY_MAX_PAIRS) -> JudgementStore:
        """A store in a dict, which sends all the pairs it lacks in one backend call (the caller decides the
        steps: workbench/scoring_steps.py)."""
        return cls(MemoryJudgements(max_pairs), chunk_pairs=None)

    def close(self) -> None:
        self.storage.close()

    def kept(self, backend: RerankBackend, queries: Sequence[Query]) -> list[list[bool]]:
        """Whether each pair's judgement is kept (judge_many would answer it without the backend)."""
        keys = self._keys(backend, queries)
        found = self.storage.found(set(_flat(keys)))
        return [[k in found for k in group] for group in keys]

    def missing(self, backend: RerankBackend, queries: Sequence[Query]) -> list[Query]:
        """The pairs not kept yet, each once, as the queries judge_many would send the backend (in one chunk)."""
        keys = self._keys(backend, queries)
        return self._asked(queries, self._missing(keys, self.storage.found(set(_flat(keys)))))[0]

    def judge_many(self, backend: RerankBackend, queries: Sequence[Query], progress: Progress | None = None,
                   chunk_pairs: int | None = None) -> list[list[Judgement]]:
        """Each query's documents judged, in input order, as backend.judge_many answers, but only the pairs not kept
        yet reach the backend: each once, `chunk_pairs` at a time (None: the store's own), each chunk kept as it
        comes back.

        `progress` is told (pairs answered, pairs asked): first the pairs already kept, then as the backend goes.
        A progress that raises StopScoring stops the scoring where it can (between a backend's forward passes, when
        its capabilities say it yields between them, else between chunks): what was scored is kept, and
        ScoringStopped is raised, its `partial` shaped like the answer (None for each pair not judged)."""
        keys = self._keys(backend, queries)
        asked_keys = _flat(keys)
        found = self.storage.found(set(asked_keys))
        todo = self._missing(keys, found)
        total = len(asked_keys)
        done = total - len(todo)  # a pair asked twice is scored once: its second asking counts as answered

        told_last = -1

        def say(answered: int) -> None:
            """progress(answered, total), once for each count (the backend may have told the end of a chunk)."""
            nonlocal told_last
            if progress is not None and answered != told_last:
                told_last = answered
                progress(answered, total)

        def stopped() -> ScoringStopped:
            return ScoringStopped([[found.get(k) for k in group] for group in keys])

        def tell(answered: int) -> None:
            try:
                say(answered)
            except StopScoring:
                raise stopped() from None

        tell(done)
        size = max(chunk_pairs or self.chunk_pairs or len(todo), 1)
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            asked, positions = self._asked(queries, chunk)
            told = None if progress is None else (lambda n, _, before=done: say(before + n))
            self.backend_calls += 1
            verdicts, stop = _judged_until_stopped(backend, asked, told)
            fresh = {keys[n][d]: j for group, judged in zip(positions, verdicts) for (n, d), j in zip(group, judged)
                     if j is not None}
            self.storage.keep(fresh)
            found.update(fresh)
            self.pairs_scored += len(fresh)
            if stop:
                raise stopped()
            done += len(chunk)
            tell(done)
        return [[found[k] for k in group] for group in keys]

    @staticmethod
    def _keys(backend: RerankBackend, queries: Sequence[Query]) -> list[list[str]]:
        model = backend_key(backend)
        return [[pair_key(model, q, d) for d in q.documents] for q in queries]

    @staticmethod
    def _missing(keys: list[list[str]], found: Mapping[str, Judgement]) -> list[Position]:
        """Where the pairs not in `found` are first asked, each once, in input order."""
        seen: set[str] = set()
        todo: list[Position] = []
        for n, group in enumerate(keys):
            for d, k in enumerate(group):
                if k not in found and k not in seen:
                    seen.add(k)
                    todo.append((n, d))
        return todo

    @staticmethod
    def _asked(queries: Sequence[Query], pairs: Sequence[Position]) -> tuple[list[Query], list[list[Position]]]:
        """`pairs` as queries for the backend (one per query they come from, its instruction resolved), with each
        document's position in `queries`."""
        by_query: dict[int, list[Position]] = {}
        for n, d in pairs:
            by_query.setdefault(n, []).append((n, d))
        asked = [replace(queries[n], documents=[queries[n].documents[d] for _, d in group],
                         instruction=resolve_instruction(queries[n].instruction))
                 for n, group in by_query.items()]
        return asked, list(by_query.values())


def _flat(keys: list[list[str]]) -> list[str]:
    return [k for group in keys for k in group]


def _judged_until_stopped(backend: RerankBackend, asked: list[Query], progress: Progress | None
                          ) -> tuple[Sequence[Sequence[Judgement | None]], bool]:
    """backend.judge_many(asked), and whether a StopScoring from `progress` stopped it (then the pairs not judged
    are None)."""
    try:
        return backend.judge_many(asked, progress), False
    except ScoringStopped as e:
        return e.partial, True
    except StopScoring:  # a backend that cannot stop between passes let the progress's StopScoring through
        return [[None] * len(q.documents) for q in asked], True
