"""What each browser was doing on a page, kept on the server so that a reload, a closed tab, a crash or a restart
loses nothing: the page's inputs as they are typed, and its recent results, newest first, to go back to.

A browser is told apart by a random id in a long-lived cookie (`core/browser_ids`), which the one-port server
gives every browser that has none. Two tabs of one browser share their inputs (the last one
typed in wins) and their history. Kept in `<data folder>/drafts.sqlite3`; each page keeps its last HISTORY_KEPT
results per browser.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reranker.formats.sqlite_files import open_sqlite

HISTORY_KEPT = 20


@dataclass(frozen=True)
class PastResult:
    id: int
    saved_at: str
    """ISO 8601, UTC."""
    title: str
    """What it was, for a list: the query, the documents, the model."""


class DraftStore:
    """Inputs and recent results per (browser, page); safe to share between the script threads of one server."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_sqlite(path, any_thread=True)  # shared by the server's script threads, under _lock
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS inputs (browser TEXT, page TEXT, body TEXT, saved_at TEXT, "
                             "PRIMARY KEY (browser, page))")
            self._db.execute("CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY AUTOINCREMENT, browser TEXT, "
                             "page TEXT, saved_at TEXT, title TEXT, body TEXT)")
            self._db.execute("CREATE INDEX IF NOT EXISTS results_by_browser ON results (browser, page, id)")

    def save_inputs(self, browser: str, page: str, inputs: dict[str, object]) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO inputs VALUES (?, ?, ?, ?)",
                             (browser, page, json.dumps(inputs, ensure_ascii=False), _now()))

    def inputs(self, browser: str, page: str) -> dict[str, object] | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM inputs WHERE browser = ? AND page = ?", (browser, page)).fetchone()
        return json.loads(row[0]) if row else None

    def add_result(self, browser: str, page: str, title: str, body: str) -> int:
        """Keep a result (its JSON), dropping this page's oldest beyond HISTORY_KEPT; its id."""
        with self._lock, self._db:
            added = self._db.execute("INSERT INTO results (browser, page, saved_at, title, body) "
                                     "VALUES (?, ?, ?, ?, ?)", (browser, page, _now(), title, body)).lastrowid
            self._db.execute("DELETE FROM results WHERE browser = ? AND page = ? AND id NOT IN (SELECT id FROM results "
                             "WHERE browser = ? AND page = ? ORDER BY id DESC LIMIT ?)",
                             (browser, page, browser, page, HISTORY_KEPT))
        return int(added)

    def results(self, browser: str, page: str) -> list[PastResult]:
        """This page's kept results, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, saved_at, title FROM results WHERE browser = ? AND page = ? "
                                    "ORDER BY id DESC", (browser, page)).fetchall()
        return [PastResult(*row) for row in rows]

    def result(self, browser: str, page: str, result_id: int | None = None) -> str | None:
        """A kept result's JSON (None: the newest); None when there is none."""
        with self._lock:
            if result_id is None:
                row = self._db.execute("SELECT body FROM results WHERE browser = ? AND page = ? ORDER BY id DESC "
                                       "LIMIT 1", (browser, page)).fetchone()
            else:
                row = self._db.execute("SELECT body FROM results WHERE browser = ? AND page = ? AND id = ?",
                                       (browser, page, result_id)).fetchone()
        return row[0] if row else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
