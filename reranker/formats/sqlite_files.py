"""The one way the package opens a SQLite file: the job store (sidecar), the judgement store (evaluations) and the
per-browser drafts (workbench) each keep one in the data folder, and each opens it through `open_sqlite`.

Every file gets the same settings: its folder made; a write-ahead log (WAL), so a reader (a page listing jobs, a
second evaluation) never waits for a writer's commit and a commit is one append; `synchronous=FULL`, so a commit
answered (a job accepted, a chunk of scores) survives a power cut; and a busy timeout, so two writers (two
processes on one data folder, or the job worker and a request) wait for each other instead of failing with
"database is locked".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_SECONDS = 30.0
"""How long a write waits for another connection's write to end before it fails."""


def open_sqlite(path: Path | str, *, autocommit: bool = False, any_thread: bool = False) -> sqlite3.Connection:
    """A connection to the SQLite file `path` (made, with its folder, when missing), set up as the module says.

    autocommit: no implicit transactions (Python's `isolation_level=None`): the caller opens its own, as the job
    store does with BEGIN IMMEDIATE; else Python opens one before each write and `with connection:` commits it.
    any_thread: the connection may be used from a thread other than the one that opened it; the caller then
    guards it (DraftStore's lock) or keeps one per thread (JobStore, whose close() runs on another thread)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None if autocommit else "",  # "": Python's default
                         check_same_thread=not any_thread)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db
