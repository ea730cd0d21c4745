"""The score cache and CSV batch runs, on the tiny real model."""

import json

import pytest

from reranker import DEFAULT_INSTRUCTION, Query
from reranker.csv_io import pairs_from_table, read_table, safe_csv_bytes
from reranker.ranking_metrics import label_metrics
from reranker.workbench.batch_scoring import (
    BatchProgress,
    batch_json,
    batch_metrics,
    chunk_groups,
    overall_metrics,
    run_batch,
)
from reranker.workbench.score_cache import ScoreCache, backend_key

TABLE = (
    "question,passage,relevance\n"
    "What is the capital of China?,The capital of China is Beijing.,2\n"
    "What is the capital of China?,Shanghai is the largest city in China.,0\n"
    "如何提高睡眠质量？,保持规律的作息时间。,1\n"
    "What is the capital of China?,=HYPERLINK(\"http://x\"),0\n"
    "如何提高睡眠质量？,红烧肉的做法。,\n"
    "What is the capital of China?,Nanjing was a capital once.,1\n"
)


def test_cache_scores_each_pair_once(reranker):
    cache = ScoreCache()
    docs = ["Beijing is the capital.", "Gravity pulls.", "Beijing is the capital."]
    first = cache.judge(reranker, "capital of China?", docs)
    assert cache.engine_calls == 1 and cache.pairs_scored == 2
    assert first[0] is first[2]
    assert [j.score for j in first] == pytest.approx(reranker.score("capital of China?", docs), abs=1e-5)
    again = cache.judge(reranker, "capital of China?", docs, instruction="  ")
    assert cache.engine_calls == 1 and again == first
    cache.judge(reranker, "capital of China?", [*docs, "A new one."], instruction=DEFAULT_INSTRUCTION)
    assert cache.engine_calls == 2 and cache.pairs_scored == 3


def test_cache_keys_on_instruction_and_query(reranker):
    cache = ScoreCache()
    cache.judge_many(reranker, [Query("q", ["d"], "one"), Query("q", ["d"], "two"), Query("q2", ["d"], "one")])
    assert cache.engine_calls == 1 and cache.pairs_scored == 3


def test_cache_forgets_the_oldest_past_its_size(reranker):
    cache = ScoreCache(max_pairs=2)
    judged = cache.judge(reranker, "q", ["a", "b", "c"])
    assert len(judged) == 3 and len(cache.judgements) == 2
    missing = cache.missing(backend_key(reranker), [Query("q", ["a", "b", "c"])])
    assert missing == [Query("q", ["a"], DEFAULT_INSTRUCTION)]


def test_chunks_pack_whole_queries():
    groups = [(Query("q1", ["a"] * 3), [0, 1, 2]), (Query("q2", ["b"] * 2), [3, 4]), (Query("q3", ["c"] * 5), [5])]
    assert [[g[0].query for g in chunk] for chunk in chunk_groups(groups, 5)] == [["q1", "q2"], ["q3"]]
    assert [[g[0].query for g in chunk] for chunk in chunk_groups(groups, 1)] == [["q1"], ["q2"], ["q3"]]


def test_progress_text_and_eta():
    assert BatchProgress(0, 10, 0.0).eta_seconds is None
    half = BatchProgress(5, 10, 4.0)
    assert half.eta_seconds == pytest.approx(4.0) and half.fraction == 0.5
    assert half.text() == "5 / 10 pairs · 4 s elapsed · about 4 s left"
    assert "2 min 05 s" in BatchProgress(1, 2, 125.0).text()


def test_batch_groups_by_query_and_matches_the_engine(reranker):
    table = read_table(TABLE.encode("gbk"), "pairs.csv")
    rows = pairs_from_table(table, "question", "passage", "relevance")
    seen: list[BatchProgress] = []
    cache = ScoreCache()
    results = run_batch(cache, reranker, rows, instruction="", on_progress=seen.append, chunk_pairs=2)
    assert cache.engine_calls == 2  # one chunk per query here
    assert results["query"].tolist() == ["What is the capital of China?"] * 4 + ["如何提高睡眠质量？"] * 2
    capital = results[results["query"] == "What is the capital of China?"]
    docs = [r.document for r in rows if r.query == "What is the capital of China?"]
    expected = reranker.rank("What is the capital of China?", docs)
    assert capital["document"].tolist() == [d.document for d in expected]
    assert capital["score"].tolist() == pytest.approx([d.score for d in expected], abs=1e-5)
    assert capital["rank"].tolist() == [1, 2, 3, 4]
    assert set(results["instruction"]) == {DEFAULT_INSTRUCTION}
    assert sorted(results["row"]) == [1, 2, 3, 4, 5, 6]
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == 6
    assert [p.done for p in seen] == sorted(p.done for p in seen)


def test_batch_rows_without_an_instruction_get_the_page_one(reranker):
    table = read_table(b"query,document,instruction\nq,d1,\nq,d2,Find code\n", "t.csv")
    rows = pairs_from_table(table, "query", "document", instruction="instruction")
    results = run_batch(ScoreCache(), reranker, rows, instruction="Find legal clauses")
    assert dict(zip(results["document"], results["instruction"])) == {"d1": "Find legal clauses", "d2": "Find code"}
    assert "label" not in results.columns


def test_batch_metrics_exports_and_a_second_run_is_free(reranker):
    table = read_table(TABLE.encode("utf-8-sig"), "pairs.csv")
    rows = pairs_from_table(table, "question", "passage", "relevance")
    cache = ScoreCache()
    results = run_batch(cache, reranker, rows)
    calls = cache.engine_calls
    assert run_batch(cache, reranker, rows).equals(results)
    assert cache.engine_calls == calls

    per_query = batch_metrics(results, k=3)
    assert per_query["query"].tolist() == ["What is the capital of China?", "如何提高睡眠质量？"]
    capital = results[results["query"] == "What is the capital of China?"]
    assert per_query.iloc[0][["NDCG@3", "MRR", "Hit@1"]].tolist() == pytest.approx(
        list(label_metrics(capital["label"].tolist(), 3).values()))
    overall = overall_metrics(per_query)
    assert overall["MRR"] == pytest.approx(per_query["MRR"].mean())

    exported = safe_csv_bytes(results).decode("utf-8-sig")
    assert "'=HYPERLINK" in exported and "如何提高睡眠质量？" in exported
    payload = json.loads(batch_json(results, "tiny"))
    assert [q["query"] for q in payload["queries"]] == per_query["query"].tolist()
    assert payload["queries"][0]["results"][0]["rank"] == 1 and "logit" in payload["queries"][0]["results"][0]
