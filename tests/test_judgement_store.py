"""The judgement store (analysis/judgement_store.py): one key and one judge_many for its two storages, a dict in
memory (the workbench's score cache) and a SQLite file (evaluations); files written before the two were one still
read; and the one way the package opens a SQLite file (formats/sqlite_files.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from reranker.analysis.judgement_store import JudgementStore, backend_key, pair_key
from reranker.core.backend import Capabilities, RerankBackend, ScoringStopped, StopScoring
from reranker.core.ranking import Judgement, Passage, Progress, Query
from reranker.formats.sqlite_files import open_sqlite

MODEL = "tiny-qwen3-reranker (in this process)"
KEYS_OF_THE_FIRST_STORE = [
    (Query("What is the capital of China?", []), "The capital of China is Beijing.",
     "afff05b35cc4afd168abfda7cf410fd8ea9486f8d66b304974cb1e2678f2a388"),
    (Query("如何提高睡眠质量？", [], "Find tips", document_tokens=128, keep_document_end=True), "保持规律的作息时间。",
     "d3119f2181cb069cdbb0982498c82cecf0525755fec8ba35b992bb83d06447df"),
    (Query("q", [], "  ", passage_tokens=256, max_passages=4), "a long document",
     "40c3895bfa1bd3b91cc057027c229c8550080eac0acd162751617d60325d9b1a"),
]
"""Keys as the judgement store wrote them before it was one with the workbench's score cache (its `_key`)."""


class Counted(RerankBackend):
    """A backend whose verdicts follow from the texts alone, counting the pairs it is asked."""

    model_name = "tiny-qwen3-reranker"

    def __init__(self) -> None:
        self.calls: list[list[Query]] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("counted", "in this process")

    @property
    def pairs(self) -> int:
        return sum(len(q.documents) for call in self.calls for q in call)

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        self.calls.append(list(queries))
        return [[verdict(q, d) for d in q.documents] for q in queries]


def verdict(q: Query, document: str) -> Judgement:
    score = (sum(map(ord, q.query + document)) % 97 + 1) / 99
    passages = (Passage(0, len(document), score, score * 8 - 4),) if q.passage_tokens is not None else None
    return Judgement(score, score * 8 - 4, len(document) + 9, len(document) > 12, passages)


@pytest.mark.parametrize(("query", "document", "key"), KEYS_OF_THE_FIRST_STORE)
def test_the_key_is_the_one_every_judgements_file_was_written_with(query, document, key):
    assert pair_key(MODEL, query, document) == key


def test_a_file_written_before_is_read_without_scoring_again(tmp_path: Path):
    """judgements.sqlite3 as the first store wrote it (its table, its keys, no passages table): its pairs come from
    disk, and only a pair it lacks reaches the backend."""
    path = tmp_path / "judgements.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE judgements (key TEXT PRIMARY KEY, score REAL, logit REAL, tokens INTEGER, "
                    "truncated INTEGER)")
        old.executemany("INSERT INTO judgements VALUES (?, ?, ?, ?, ?)",
                        [(key, 0.75, 1.0986, 40, 1) for _, _, key in KEYS_OF_THE_FIRST_STORE])
    old.close()
    backend = Counted()
    assert backend_key(backend) == MODEL
    store = JudgementStore(path)
    asked = [Query(q.query, [d, "a pair never scored"], q.instruction, q.document_tokens, q.keep_document_end,
                   passage_tokens=q.passage_tokens, max_passages=q.max_passages)
             for q, d, _ in KEYS_OF_THE_FIRST_STORE]
    judged = store.judge_many(backend, asked)
    assert [group[0] for group in judged] == [Judgement(0.75, 1.0986, 40, True)] * 3
    assert backend.pairs == store.pairs_scored == 3  # the new document of each query, nothing kept
    again = JudgementStore(path)
    assert again.judge_many(backend, asked) == judged and again.pairs_scored == 0
    store.close()
    again.close()


def test_memory_and_disk_answer_the_same(tmp_path: Path):
    asked = [Query("capital?", ["Beijing.", "Gravity pulls things down to the ground.", "Beijing."]),
             Query("capital?", ["Beijing."], "Find cities"),
             Query("睡眠", ["规律的作息。", "红烧肉的做法很多，各地不同。"], passage_tokens=8)]
    memory, disk = JudgementStore.in_memory(), JudgementStore(tmp_path / "j.sqlite3", chunk_pairs=2)
    scored_here, scored_there = Counted(), Counted()
    first = memory.judge_many(scored_here, asked)
    assert disk.judge_many(scored_there, asked) == first
    assert memory.pairs_scored == disk.pairs_scored == scored_here.pairs == scored_there.pairs == 5  # each once
    assert len(memory.storage) == len(disk.storage) == 5
    assert memory.backend_calls == 1 and disk.backend_calls == 3  # disk: chunks of 2, each committed
    disk.close()
    reopened = JudgementStore(tmp_path / "j.sqlite3")
    assert reopened.judge_many(Counted(), asked) == first  # passages included
    assert memory.judge_many(scored_here, asked) == first
    assert reopened.backend_calls == 0 and memory.backend_calls == 1
    assert reopened.missing(scored_here, [Query("capital?", ["Beijing.", "Shanghai."])]) == \
        memory.missing(scored_here, [Query("capital?", ["Beijing.", "Shanghai."])])
    reopened.close()


def test_the_engines_judgements_with_passages_come_back_from_disk_as_they_were(reranker, tmp_path: Path):
    asked = [Query("capital of China?", ["Beijing is the capital of China. " * 6, "Gravity."], passage_tokens=16)]
    store = JudgementStore(tmp_path / "j.sqlite3")
    fresh = store.judge_many(reranker, asked)
    assert fresh[0][0].passages is not None and len(fresh[0][0].passages) > 1
    store.close()
    kept = JudgementStore(tmp_path / "j.sqlite3")
    assert kept.judge_many(reranker, asked) == fresh and kept.backend_calls == 0
    kept.close()


def test_a_stop_keeps_what_was_scored_and_answers_it(tmp_path: Path):
    """A progress that raises StopScoring, on a backend that cannot stop between passes: the store stops between
    chunks, every chunk scored is kept, and ScoringStopped carries the answer so far."""
    asked = [Query("q", [f"document {n}" for n in range(6)])]

    def stop_at_four(done: int, total: int) -> None:
        if done >= 4:
            raise StopScoring

    store = JudgementStore(tmp_path / "j.sqlite3", chunk_pairs=2)
    with pytest.raises(ScoringStopped) as stopped:
        store.judge_many(Counted(), asked, stop_at_four)
    assert [j is not None for j in stopped.value.partial[0]] == [True] * 4 + [False] * 2
    backend = Counted()
    assert store.judge_many(backend, asked) == [[verdict(asked[0], d) for d in asked[0].documents]]
    assert backend.pairs == 2  # the two the stop left


def test_progress_tells_the_pairs_answered_kept_ones_first():
    store, backend, seen = JudgementStore.in_memory(), Counted(), []
    store.judge_many(backend, [Query("q", ["a", "b"])])
    store.judge_many(backend, [Query("q", ["a", "b", "c", "d", "c"])], lambda done, total: seen.append((done, total)))
    assert seen == [(3, 5), (5, 5)]  # a, b kept and the second c asked before: answered at once


def test_sqlite_files_are_opened_one_way(tmp_path: Path):
    path = tmp_path / "not" / "yet" / "there.sqlite3"
    db = open_sqlite(path)
    assert path.exists()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    assert db.isolation_level == "" and open_sqlite(path, autocommit=True).isolation_level is None
    db.close()
