"""Judgements kept on disk per (model, instruction, query, document), so an evaluation that is stopped half-way, or
run again with other measures, scores only what it has not scored yet.

One SQLite file; the key is a hash of the four texts (and where the model runs: the same model on a server may cut
documents differently), the value the judgement. Written a chunk at a time, so a kill loses at most one chunk.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from reranker.core.backend import RerankBackend
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import Judgement, Progress, Query

CHUNK_PAIRS = 64
"""Pairs scored and committed at a time."""


class JudgementStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, score REAL, logit REAL, "
                         "tokens INTEGER, truncated INTEGER)")
        self.scored = 0
        """Pairs this store had to send to a backend (the rest came from disk)."""

    def close(self) -> None:
        self._db.close()

    def judge_many(self, backend: RerankBackend, queries: Sequence[Query], progress: Progress | None = None,
                   chunk_pairs: int = CHUNK_PAIRS) -> list[list[Judgement]]:
        """Like backend.judge_many, but pairs judged before come from disk, and new ones are sent `chunk_pairs` at a
        time and written as each chunk comes back."""
        model = f"{backend.model_name} ({backend.capabilities.where})"
        keys = [[_key(model, q, d) for d in q.documents] for q in queries]
        found = self._found([k for group in keys for k in group])
        todo = [(n, d) for n, group in enumerate(keys) for d, k in enumerate(group) if k not in found]
        total, done = sum(len(g) for g in keys), sum(len(g) for g in keys) - len(todo)
        if progress is not None:
            progress(done, total)
        for start in range(0, len(todo), chunk_pairs):
            chunk = todo[start:start + chunk_pairs]
            by_query: dict[int, list[int]] = {}
            for n, d in chunk:
                by_query.setdefault(n, []).append(d)
            asked = [replace(queries[n], documents=[queries[n].documents[d] for d in ds]) for n, ds in by_query.items()]
            verdicts = backend.judge_many(asked)
            fresh = {keys[n][d]: j for (n, ds), judged in zip(by_query.items(), verdicts) for d, j in zip(ds, judged)}
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?)",
                                     [(k, j.score, j.logit, j.tokens, j.truncated) for k, j in fresh.items()])
            found.update(fresh)
            self.scored += len(fresh)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        return [[found[k] for k in group] for group in keys]

    def _found(self, keys: list[str]) -> dict[str, Judgement]:
        found: dict[str, Judgement] = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            rows = self._db.execute(f"SELECT key, score, logit, tokens, truncated FROM judgements WHERE key IN "
                                    f"({','.join('?' * len(part))})", part)
            for key, score, logit, tokens, truncated in rows:
                found[key] = Judgement(score, logit, tokens, None if truncated is None else bool(truncated))
        return found


def _key(model: str, q: Query, document: str) -> str:
    what = [model, resolve_instruction(q.instruction), q.query, document, q.document_tokens, q.keep_document_end]
    if q.passage_tokens is not None:  # keys of judgements without passages stay as they were
        what += [q.passage_tokens, q.max_passages]
    return hashlib.sha256(json.dumps(what, ensure_ascii=False).encode("utf-8")).hexdigest()
