"""Jobs in SQLite: a job accepted is committed before its id is answered, and scores are committed chunk by
chunk, so after a crash the worker picks up where the last commit left off and scores nothing twice
(except the one chunk that was in the engine when the process died).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reranker.core.progress import seconds_left
from reranker.core.ranking import Judgement, Passage, RankedDocument, rank_judgements
from reranker.formats.sqlite_files import open_sqlite

STATUSES = ("queued", "running", "done", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    total_pairs INTEGER NOT NULL,
    done_pairs INTEGER NOT NULL DEFAULT 0,
    top_n INTEGER,
    error TEXT,
    filename TEXT,
    upload BLOB,
    columns TEXT,
    run_started_at REAL,
    run_done_at_start INTEGER
);
CREATE TABLE IF NOT EXISTS job_queries (
    job_id TEXT NOT NULL,
    qnum INTEGER NOT NULL,
    query TEXT NOT NULL,
    instruction TEXT,
    PRIMARY KEY (job_id, qnum)
);
CREATE TABLE IF NOT EXISTS job_pairs (
    job_id TEXT NOT NULL,
    pnum INTEGER NOT NULL,
    qnum INTEGER NOT NULL,
    doc_index INTEGER NOT NULL,
    row INTEGER,
    document TEXT NOT NULL,
    label REAL,
    score REAL,
    logit REAL,
    tokens INTEGER,
    truncated INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    scored_at REAL,
    PRIMARY KEY (job_id, pnum)
);
CREATE INDEX IF NOT EXISTS job_pairs_pending ON job_pairs (job_id, pnum) WHERE scored_at IS NULL;
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (status, created_at);
"""
_ADDED_COLUMNS = {"jobs": ("passage_tokens INTEGER", "max_passages INTEGER"),
                  "job_pairs": ("passage_start INTEGER", "passage_end INTEGER")}
"""Columns added since the first schema: a store made before gets them when opened (its jobs read passages as none)."""


@dataclass(frozen=True)
class NewPair:
    qnum: int
    doc_index: int
    document: str
    row: int | None = None
    label: float | None = None


@dataclass(frozen=True)
class JobRecord:
    id: str
    status: str
    kind: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    total_pairs: int
    done_pairs: int
    top_n: int | None
    error: str | None
    filename: str | None
    columns: dict[str, str | None] | None
    run_started_at: float | None
    run_done_at_start: int | None
    passage_tokens: int | None = None
    """Documents judged as passages of at most this many tokens (None: whole)."""
    max_passages: int | None = None

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Seconds left at the pace of the current run; None before the pace is known or once finished."""
        if self.status != "running" or self.run_started_at is None:
            return None
        scored = self.done_pairs - (self.run_done_at_start or 0)
        elapsed = (now or time.time()) - self.run_started_at
        left = seconds_left(scored, scored + self.total_pairs - self.done_pairs, elapsed)
        return None if left is None else round(left, 1)


@dataclass(frozen=True)
class PendingPair:
    pnum: int
    qnum: int
    document: str


@dataclass(frozen=True)
class ScoredQuery:
    """One query of a finished job, its documents ranked; `rows`/`labels` by document index (CSV jobs)."""

    query: str
    instruction: str | None
    ranked: list[RankedDocument]
    rows: list[int | None]
    labels: list[float | None]


class JobStore:
    """All job state; safe to use from several threads (one SQLite connection per thread, WAL journal)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._db().executescript(_SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            have = {r["name"] for r in self._db().execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column.split()[0] not in have:
                    self._db().execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # autocommit: _tx opens each transaction itself (BEGIN IMMEDIATE); any thread: close() runs on another
            db = open_sqlite(self.path, autocommit=True, any_thread=True)
            db.row_factory = sqlite3.Row
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._connections_lock:
            for db in self._connections:
                try:
                    db.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()

    # Creating and reading jobs.

    def create(self, kind: str, queries: Sequence[tuple[str, str | None]], pairs: Sequence[NewPair],
               top_n: int | None = None, filename: str | None = None, upload: bytes | None = None,
               columns: dict[str, str | None] | None = None, passage_tokens: int | None = None,
               max_passages: int | None = None) -> JobRecord:
        """Commit a queued job with all its pairs; once this returns, the job survives any crash."""
        job_id = uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, status, kind, created_at, total_pairs, top_n, filename, upload, columns, "
                "passage_tokens, max_passages) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, kind, time.time(), len(pairs), top_n, filename, upload,
                 json.dumps(columns) if columns is not None else None, passage_tokens, max_passages))
            db.executemany("INSERT INTO job_queries (job_id, qnum, query, instruction) VALUES (?, ?, ?, ?)",
                           ((job_id, n, q, i) for n, (q, i) in enumerate(queries)))
            db.executemany(
                "INSERT INTO job_pairs (job_id, pnum, qnum, doc_index, row, document, label) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((job_id, n, p.qnum, p.doc_index, p.row, p.document, p.label) for n, p in enumerate(pairs)))
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> JobRecord | None:
        row = self._db().execute(
            "SELECT id, status, kind, created_at, started_at, finished_at, total_pairs, done_pairs, top_n, error, "
            "filename, columns, run_started_at, run_done_at_start, passage_tokens, max_passages FROM jobs WHERE id = ?",
            (job_id,)).fetchone()
        if row is None:
            return None
        fields = dict(row)
        fields["columns"] = json.loads(fields["columns"]) if fields["columns"] else None
        return JobRecord(**fields)

    def recent(self, limit: int = 50) -> list[JobRecord]:
        rows = self._db().execute("SELECT id FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [job for job in (self.get(r["id"]) for r in rows) if job is not None]

    def upload(self, job_id: str) -> bytes | None:
        row = self._db().execute("SELECT upload FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else row["upload"]

    def counts(self) -> dict[str, int]:
        found = dict(self._db().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        return {s: found.get(s, 0) for s in STATUSES}

    def next_runnable(self) -> JobRecord | None:
        """The job to work on: an interrupted one first, then the oldest queued."""
        row = self._db().execute(
            "SELECT id FROM jobs WHERE status IN ('running', 'queued') "
            "ORDER BY status = 'queued', created_at LIMIT 1").fetchone()
        return None if row is None else self.get(row["id"])

    # The worker's side.

    def mark_running(self, job_id: str) -> bool:
        """Start (or resume) a run; False when the job was cancelled meanwhile."""
        now = time.time()
        with self._tx() as db:
            changed = db.execute(
                "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), run_started_at = ?, "
                "run_done_at_start = done_pairs WHERE id = ? AND status IN ('queued', 'running')",
                (now, now, job_id)).rowcount
        return changed == 1

    def status(self, job_id: str) -> str | None:
        row = self._db().execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else row["status"]

    def claim_chunk(self, job_id: str, size: int) -> tuple[list[PendingPair], dict[int, tuple[str, str | None]]]:
        """The next unscored pairs (attempts counted and committed first) and the queries they belong to."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT pnum, qnum, document FROM job_pairs "
                "WHERE job_id = ? AND scored_at IS NULL ORDER BY pnum LIMIT ?", (job_id, size)).fetchall()
            pairs = [PendingPair(r["pnum"], r["qnum"], r["document"]) for r in rows]
            db.executemany("UPDATE job_pairs SET attempts = attempts + 1 WHERE job_id = ? AND pnum = ?",
                           ((job_id, p.pnum) for p in pairs))
            qnums = sorted({p.qnum for p in pairs})
            queries: dict[int, tuple[str, str | None]] = {}
            for qnum in qnums:
                q = db.execute("SELECT query, instruction FROM job_queries WHERE job_id = ? AND qnum = ?",
                               (job_id, qnum)).fetchone()
                queries[qnum] = (q["query"], q["instruction"])
        return pairs, queries

    def save_scores(self, job_id: str, scored: Sequence[tuple[PendingPair, Judgement]]) -> None:
        """Keep a chunk's scores, unless the job was cancelled while it was scored: what Cancel answered is then
        what the job keeps (a retry scores that chunk again)."""
        now = time.time()
        with self._tx() as db:
            if db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0] != "running":
                return
            db.executemany(
                "UPDATE job_pairs SET score = ?, logit = ?, tokens = ?, truncated = ?, passage_start = ?, "
                "passage_end = ?, scored_at = ? WHERE job_id = ? AND pnum = ? AND scored_at IS NULL",
                ((j.score, j.logit, j.tokens, None if j.truncated is None else int(j.truncated),
                  best.start if (best := j.best_passage()) else None, best.end if best else None, now, job_id,
                  p.pnum) for p, j in scored))
            db.execute("UPDATE jobs SET done_pairs = (SELECT COUNT(*) FROM job_pairs WHERE job_id = ? "
                       "AND scored_at IS NOT NULL) WHERE id = ?", (job_id, job_id))

    def finish(self, job_id: str, status: str, error: str | None = None) -> bool:
        """Move a running job to done or failed; False when it was cancelled meanwhile."""
        with self._tx() as db:
            changed = db.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = 'running'",
                (status, error, time.time(), job_id)).rowcount
        return changed == 1

    def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a queued or running job; a finished one is left as it is."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ? "
                       "AND status IN ('queued', 'running')", (time.time(), job_id))
        return self.get(job_id)

    def requeue(self, job_id: str) -> JobRecord | None:
        """Queue a failed or cancelled job again; the pairs it had scored are kept, the rest are scored."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET status = 'queued', error = NULL, finished_at = NULL WHERE id = ? "
                       "AND status IN ('failed', 'cancelled')", (job_id,))
        return self.get(job_id)

    # Results.

    def results(self, job_id: str, top_n: int | None = None) -> list[ScoredQuery]:
        """Each query's scored documents, best first (cut to top_n)."""
        db = self._db()
        queries = db.execute("SELECT qnum, query, instruction FROM job_queries WHERE job_id = ? ORDER BY qnum",
                             (job_id,)).fetchall()
        grouped: dict[int, list[sqlite3.Row]] = {q["qnum"]: [] for q in queries}
        for r in db.execute("SELECT qnum, doc_index, row, document, label, score, logit, tokens, truncated, "
                            "passage_start, passage_end FROM job_pairs WHERE job_id = ? AND scored_at IS NOT NULL "
                            "ORDER BY pnum", (job_id,)):
            grouped[r["qnum"]].append(r)
        out: list[ScoredQuery] = []
        for q in queries:
            rows = sorted(grouped[q["qnum"]], key=lambda r: r["doc_index"])
            documents = [r["document"] for r in rows]
            judgements = [Judgement(r["score"], r["logit"], r["tokens"],
                                    None if r["truncated"] is None else bool(r["truncated"]),
                                    None if r["passage_start"] is None else
                                    (Passage(r["passage_start"], r["passage_end"], r["score"], r["logit"]),))
                          for r in rows]
            ranked = rank_judgements(documents, judgements, top_n)
            out.append(ScoredQuery(q["query"], q["instruction"], ranked, [r["row"] for r in rows],
                                   [r["label"] for r in rows]))
        return out
