"""The workbench's score cache (a JudgementStore in memory), scoring with progress (whole, or in steps) and CSV batch
runs, on the tiny real model."""

import json
from dataclasses import replace

import pytest

from reranker import DEFAULT_INSTRUCTION, Query
from reranker.analysis.judgement_store import JudgementStore
from reranker.analysis.ranking_metrics import label_metrics
from reranker.core.backend import ScoringStopped, StopScoring
from reranker.formats.exports import EXPORT_COLUMNS, export_csv, export_json
from reranker.formats.tables import pairs_from_table, read_table
from reranker.workbench.batch_scoring import batch_metrics, overall_metrics, run_batch
from reranker.workbench.scoring_steps import ScoringProgress, judge_in_steps, pair_cost, sent_whole

TABLE = (
    "question,passage,relevance\n"
    "What is the capital of China?,The capital of China is Beijing.,2\n"
    "What is the capital of China?,Shanghai is the largest city in China.,0\n"
    "如何提高睡眠质量？,保持规律的作息时间。,1\n"
    "What is the capital of China?,=HYPERLINK(\"http://x\"),0\n"
    "如何提高睡眠质量？,红烧肉的做法。,\n"
    "What is the capital of China?,Nanjing was a capital once.,1\n"
)


def judge(cache: JudgementStore, backend, query: str, documents: list[str], instruction: str | None = None):
    return cache.judge_many(backend, [Query(query, documents, instruction)])[0]


def test_cache_scores_each_pair_once(reranker):
    cache = JudgementStore.in_memory()
    docs = ["Beijing is the capital.", "Gravity pulls.", "Beijing is the capital."]
    first = judge(cache, reranker, "capital of China?", docs)
    assert cache.backend_calls == 1 and cache.pairs_scored == 2
    assert first[0] is first[2]
    assert [j.score for j in first] == pytest.approx(reranker.score("capital of China?", docs), abs=1e-5)
    again = judge(cache, reranker, "capital of China?", docs, instruction="  ")
    assert cache.backend_calls == 1 and again == first
    judge(cache, reranker, "capital of China?", [*docs, "A new one."], instruction=DEFAULT_INSTRUCTION)
    assert cache.backend_calls == 2 and cache.pairs_scored == 3


def test_cache_keys_on_instruction_and_query(reranker):
    cache = JudgementStore.in_memory()
    cache.judge_many(reranker, [Query("q", ["d"], "one"), Query("q", ["d"], "two"), Query("q2", ["d"], "one")])
    assert cache.backend_calls == 1 and cache.pairs_scored == 3


def test_cache_forgets_the_oldest_past_its_size(reranker):
    cache = JudgementStore.in_memory(max_pairs=2)
    judged = judge(cache, reranker, "q", ["a", "b", "c"])
    assert len(judged) == 3 and len(cache.storage) == 2
    missing = cache.missing(reranker, [Query("q", ["a", "b", "c"])])
    assert missing == [Query("q", ["a"], DEFAULT_INSTRUCTION)]


class AsAServer:
    """The tiny engine as a backend that does not yield between its passes (a server's): the page sends it steps."""

    def __init__(self, reranker) -> None:
        self.reranker, self.model_name = reranker, reranker.model_name
        self.capabilities = replace(reranker.capabilities, yields_between_passes=False)

    def judge_many(self, queries, progress=None):
        return self.reranker.judge_many(queries, progress)


class Cancelled(BaseException):
    """What Streamlit raises from a widget update once Cancel was pressed (its StopException is a BaseException)."""


def test_a_backend_that_yields_between_passes_gets_the_whole_request_others_get_steps(reranker):
    plain = [Query("q", ["d"])]
    assert sent_whole(reranker, plain)
    assert not sent_whole(AsAServer(reranker), plain)
    assert not sent_whole(reranker, [Query("q", ["d"], passage_tokens=64)])  # passages are not stopped between passes


def test_steps_grow_with_the_pace_and_split_queries_exactly(reranker):
    queries = [Query("capital of China?", [f"document {n}" for n in range(30)]), Query("睡眠", ["规律的作息。"] * 3)]
    seen: list[ScoringProgress] = []
    cache = JudgementStore.in_memory()
    server = AsAServer(reranker)
    judged = judge_in_steps(cache, server, queries, seen.append, unit="documents")
    for q, judgements in zip(queries, judged):
        assert [j.score for j in judgements] == pytest.approx(reranker.score(q.query, q.documents), abs=1e-5)
    assert cache.pairs_scored == 31 and cache.backend_calls >= 2  # the first step is small, then it grows
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == 33
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    calls = cache.backend_calls
    judge_in_steps(cache, server, queries)
    assert cache.backend_calls == calls  # all cached: the backend is not asked again


def test_the_engine_gets_the_whole_request_in_one_call_with_progress_between_passes(reranker, monkeypatch):
    monkeypatch.setattr(reranker, "batch_size", 4)  # passes of 4 documents: progress moves within the call
    queries = [Query("capital of China?", [f"document {n}" for n in range(30)]), Query("睡眠", ["规律的作息。"] * 3)]
    seen: list[ScoringProgress] = []
    cache = JudgementStore.in_memory()
    judged = judge_in_steps(cache, reranker, queries, seen.append, unit="documents")
    for q, judgements in zip(queries, judged):
        assert [j.score for j in judgements] == pytest.approx(reranker.score(q.query, q.documents), abs=1e-5)
    assert cache.pairs_scored == 31 and cache.backend_calls == 1
    assert seen[0].done == 2 and seen[-1].done == seen[-1].total == 33  # the repeated document: answered at once
    assert len({p.done for p in seen}) >= 8 and [p.done for p in seen] == sorted(p.done for p in seen)
    judge_in_steps(cache, reranker, queries)
    assert cache.backend_calls == 1


def test_cancel_stops_the_engine_between_passes_and_keeps_the_passes_done(reranker, monkeypatch):
    monkeypatch.setattr(reranker, "batch_size", 4)
    asked = [Query("capital of China?", [f"document number {n}" for n in range(20)])]
    cache = JudgementStore.in_memory()

    def cancel_at_eight(progress: ScoringProgress) -> None:
        if progress.done >= 8:
            raise Cancelled

    with pytest.raises(Cancelled):
        judge_in_steps(cache, reranker, asked, cancel_at_eight)
    assert cache.backend_calls == 1 and cache.pairs_scored == 8  # stopped after its second pass, both kept
    [judged] = judge_in_steps(cache, reranker, asked)  # Rerank again: only the rest is scored
    assert cache.backend_calls == 2 and cache.pairs_scored == 20
    assert [j.score for j in judged] == pytest.approx(reranker.score(asked[0].query, asked[0].documents), abs=1e-5)


def test_progress_text_and_eta():
    assert ScoringProgress(0, 10, 0.0).eta_seconds is None
    half = ScoringProgress(5, 10, 4.0, "documents")
    assert half.eta_seconds == pytest.approx(4.0) and half.fraction == 0.5
    assert half.text() == "Scored 5 of 10 documents · 4 s elapsed · about 4 s left"
    assert "2 min 05 s" in ScoringProgress(1, 2, 125.0).text()


class TokenClock:
    """A clock the model's work moves: each judged document costs time in proportion to its tokens, as on a CPU.

    yields: as the engine, in passes of `pass_pairs` documents, longest first, telling progress between them and
    stopping at a StopScoring; else as a server, all at once."""

    def __init__(self, reranker, seconds_per_token: float = 0.01, yields: bool = False, pass_pairs: int = 4) -> None:
        self.now, self.reranker, self.per_token, self.pass_pairs = 0.0, reranker, seconds_per_token, pass_pairs
        self.model_name = reranker.model_name
        self.capabilities = replace(reranker.capabilities, yields_between_passes=yields)

    def __call__(self) -> float:
        return self.now

    def cost(self, documents) -> float:
        return sum(pair_cost(d) for d in documents) * self.per_token

    def judge_many(self, queries, progress=None):
        if not self.capabilities.yields_between_passes:
            judged = self.reranker.judge_many(queries, progress)
            self.now += sum(self.cost(q.documents) for q in queries)
            return judged
        pairs = sorted(((n, d) for n, q in enumerate(queries) for d in range(len(q.documents))),
                       key=lambda p: -pair_cost(queries[p[0]].documents[p[1]]))
        judged = [[None] * len(q.documents) for q in queries]
        for start in range(0, len(pairs), self.pass_pairs):
            members = pairs[start:start + self.pass_pairs]
            for n, d in members:
                [[judged[n][d]]] = self.reranker.judge_many([replace(queries[n], documents=[queries[n].documents[d]])])
            self.now += self.cost([queries[n].documents[d] for n, d in members])
            if progress is not None:
                try:
                    progress(start + len(members), len(pairs))
                except StopScoring:
                    if start + len(members) < len(pairs):
                        raise ScoringStopped(judged) from None
        return judged


SHORT = [f"Short note {n}." for n in range(12)]
LONG = [f"Long report {n}: " + "the capital of a country is usually its seat of government. " * 30 for n in range(12)]


def test_time_left_goes_by_the_tokens_still_to_score_not_the_count_of_documents(reranker):
    """Short documents first, long ones after, some already scored (a Cancel, then Rerank): the time left after the
    first step is the long documents' cost, where a count of documents would say a fraction of it."""
    clock = TokenClock(reranker)
    cache = JudgementStore.in_memory()
    judge_in_steps(cache, clock, [Query("capital?", LONG[:6])], clock=clock)  # scored before: cost nothing now
    seen: list[ScoringProgress] = []
    judge_in_steps(cache, clock, [Query("capital?", SHORT + LONG)], seen.append, clock=clock)
    first = next(p for p in seen if p.eta_seconds is not None)
    truly_left = clock.cost(SHORT[first.done:] + LONG[6:])
    assert first.eta_seconds == pytest.approx(truly_left, rel=0.05)
    by_count = first.elapsed / first.done * (first.total - first.done)
    assert by_count < truly_left / 5  # what the old estimate would have said


def test_time_left_in_one_call_goes_by_the_tokens_of_the_documents_still_to_read(reranker):
    """The same on a backend that yields between passes: it reads the longest documents first, so after its first
    pass, of long documents only, the time left is the few long ones left and the short ones, which a count of
    documents would say is more than twice as long."""
    clock = TokenClock(reranker, yields=True)
    cache = JudgementStore.in_memory()
    judge_in_steps(cache, clock, [Query("capital?", LONG[:6])], clock=clock)
    seen: list[ScoringProgress] = []
    judge_in_steps(cache, clock, [Query("capital?", SHORT + LONG)], seen.append, clock=clock)
    assert cache.backend_calls == 2
    first = next(p for p in seen if p.eta_seconds is not None)
    assert first.done == 6 + 4  # the six kept, and the first pass
    truly_left = clock.cost(SHORT + LONG[6:]) - first.elapsed
    assert first.eta_seconds == pytest.approx(truly_left, rel=0.05)
    by_count = first.elapsed / (first.done - 6) * (first.total - first.done)
    assert by_count > 2 * truly_left


def test_batch_groups_by_query_and_matches_the_engine(reranker):
    table = read_table(TABLE.encode("gbk"), "pairs.csv")
    rows = pairs_from_table(table, "question", "passage", "relevance")
    seen: list[ScoringProgress] = []
    cache = JudgementStore.in_memory()
    results = run_batch(cache, reranker, rows, instruction="", on_progress=seen.append)
    assert list(results.columns) == list(EXPORT_COLUMNS)
    assert results["query"].tolist() == ["What is the capital of China?"] * 4 + ["如何提高睡眠质量？"] * 2
    capital = results[results["query"] == "What is the capital of China?"]
    docs = [r.document for r in rows if r.query == "What is the capital of China?"]
    expected = reranker.rank("What is the capital of China?", docs)
    assert capital["document"].tolist() == [d.document for d in expected]
    assert capital["score"].tolist() == pytest.approx([d.score for d in expected], abs=1e-5)
    assert capital["rank"].tolist() == [1, 2, 3, 4]
    assert set(results["instruction"]) == {DEFAULT_INSTRUCTION}
    assert sorted(results["index"]) == [0, 1, 2, 3, 4, 5]  # the table's rows, from 0
    assert set(results["model"]) == {reranker.model_name}
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == 6
    assert [p.done for p in seen] == sorted(p.done for p in seen)


def test_batch_rows_without_an_instruction_get_the_page_one(reranker):
    table = read_table(b"query,document,instruction\nq,d1,\nq,d2,Find code\n", "t.csv")
    rows = pairs_from_table(table, "query", "document", instruction="instruction")
    results = run_batch(JudgementStore.in_memory(), reranker, rows, instruction="Find legal clauses")
    assert dict(zip(results["document"], results["instruction"])) == {"d1": "Find legal clauses", "d2": "Find code"}
    assert "label" not in results.columns


def test_batch_metrics_exports_and_a_second_run_is_free(reranker):
    table = read_table(TABLE.encode("utf-8-sig"), "pairs.csv")
    rows = pairs_from_table(table, "question", "passage", "relevance")
    cache = JudgementStore.in_memory()
    results = run_batch(cache, reranker, rows)
    calls = cache.backend_calls
    assert run_batch(cache, reranker, rows).equals(results)
    assert cache.backend_calls == calls

    per_query = batch_metrics(results, k=3)
    assert per_query["query"].tolist() == ["What is the capital of China?", "如何提高睡眠质量？"]
    capital = results[results["query"] == "What is the capital of China?"]
    assert per_query.iloc[0][["NDCG@3", "MRR", "Hit@1"]].tolist() == pytest.approx(
        list(label_metrics(capital["label"].tolist(), 3).values()))
    overall = overall_metrics(per_query)
    assert overall["MRR"] == pytest.approx(per_query["MRR"].mean())

    records = results.to_dict("records")
    exported = export_csv(records).decode("utf-8-sig")
    assert exported.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert "'=HYPERLINK" in exported and "如何提高睡眠质量？" in exported
    assert {line.rsplit(",", 1)[1] for line in exported.splitlines()[1:]} == {"2", "0", "1", ""}  # not 2.0
    payload = json.loads(export_json(records))
    assert [list(row) for row in payload] == [list(EXPORT_COLUMNS)] * len(rows)
    assert payload[0]["rank"] == 1 and {type(row.get("label")) for row in payload} <= {int, type(None)}
