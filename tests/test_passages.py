"""Long documents read as passages (Query.passage_tokens) by the engine: passages that cover the document in order,
each within N tokens, cut at sentence or line ends; each scored exactly as its text alone; the best one standing for
the document."""

from __future__ import annotations

import pytest
from conftest import SCORE_TOLERANCE

from reranker import Query, Qwen3Reranker
from reranker.core.passages import estimated_spans, passage_bounds

QUERY = "What is the capital of China?"
ENGLISH = " ".join(f"Sentence {n} says something about the weather in a far away town." for n in range(40)) + \
    " The capital of China is Beijing, its seat of government. " + \
    " ".join(f"Closing remark {n} adds nothing." for n in range(20))
CHINESE = "".join(f"第{n}句讲的是一个遥远小镇的天气。" for n in range(40)) + "中国的首都是北京。" + \
    "".join(f"结尾第{n}句没有新内容。" for n in range(20))
CODE = "\n".join([f"def helper_{n}(x):\n    return x * {n}  # nothing about capitals" for n in range(30)]
                 + ["def capital_of_china():\n    return 'Beijing'"] + [f"VALUE_{n} = {n}" for n in range(20)])
N = 64


def tokens(engine: Qwen3Reranker, text: str) -> int:
    return len(engine.encoder.tokenize_text([text])[0])


@pytest.mark.parametrize("document", [ENGLISH, CHINESE, CODE], ids=["english", "chinese", "code"])
def test_passages_cover_the_document_in_order_and_each_is_scored_as_its_text_alone(reranker: Qwen3Reranker,
                                                                                     document: str) -> None:
    [[judged]] = reranker.judge_many([Query(QUERY, [document], passage_tokens=N)])
    passages = judged.passages
    assert passages is not None and len(passages) > 1
    assert passages[0].start == 0 and passages[-1].end == len(document.rstrip())
    for before, after in zip(passages, passages[1:]):
        assert before.start < after.start <= before.end or not document[before.end:after.start].strip()
    assert all(tokens(reranker, document[p.start:p.end]) <= N for p in passages)
    alone = reranker.judge(QUERY, [document[p.start:p.end] for p in passages])
    assert [p.score for p in passages] == pytest.approx([j.score for j in alone], abs=SCORE_TOLERANCE)
    best = max(passages, key=lambda p: p.logit)
    assert (judged.score, judged.logit) == (best.score, best.logit)
    assert judged.truncated is False and judged.tokens == sum(j.tokens for j in alone)


def test_passages_end_at_sentence_ends_and_lines_in_code(reranker: Qwen3Reranker) -> None:
    [[english, chinese, code]] = reranker.judge_many([Query(QUERY, [ENGLISH, CHINESE, CODE], passage_tokens=N)])
    assert all(ENGLISH[p.end - 1] == "." for p in english.passages)
    assert all(CHINESE[p.end - 1] == "。" for p in chinese.passages)
    assert all(p.end == len(CODE) or CODE[p.end] == "\n" for p in code.passages)


def test_a_short_document_is_one_passage_scored_as_without_passages(reranker: Qwen3Reranker) -> None:
    short = "The capital of China is Beijing."
    [[judged]] = reranker.judge_many([Query(QUERY, [short], passage_tokens=N)])
    [plain] = reranker.judge(QUERY, [short])
    assert [(p.start, p.end) for p in judged.passages] == [(0, len(short))]
    assert judged.score == plain.score and judged.tokens == plain.tokens


def test_max_passages_reads_the_first_ones_and_says_the_rest_was_not_read(reranker: Qwen3Reranker) -> None:
    [[judged]] = reranker.judge_many([Query(QUERY, [ENGLISH], passage_tokens=N, max_passages=2)])
    assert len(judged.passages) == 2 and judged.truncated is True


def test_passages_share_passes_with_plain_queries_and_keep_input_order(reranker: Qwen3Reranker) -> None:
    plain = Query("capital", ["Beijing.", "Gravity."])
    [[p1, p2], [long]] = reranker.judge_many([plain, Query(QUERY, [ENGLISH], passage_tokens=N)])
    assert [p1.score, p2.score] == pytest.approx(reranker.score("capital", ["Beijing.", "Gravity."]),
                                                 abs=SCORE_TOLERANCE)
    assert p1.passages is None and long.passages is not None


@pytest.mark.parametrize(("options", "says"), [
    ({"passage_tokens": 0}, "at least 1 token"), ({"passage_tokens": -5}, "at least 1 token"),
    ({"passage_tokens": 100_000}, "more than the"), ({"passage_tokens": 64, "max_passages": 0}, "at least 1 passage"),
    ({"max_passages": 3}, "needs passage_tokens"),
])
def test_bad_passage_options_are_told(reranker: Qwen3Reranker, options: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        reranker.judge_many([Query(QUERY, [ENGLISH], **options)])


def test_estimated_spans_for_servers_without_a_tokenizer_cover_words_and_chinese() -> None:
    spans = estimated_spans("Beijing is 北京")
    assert [("Beijing is 北京")[a:b] for a, b in spans] == ["Beij", "ing", "is", "北", "京"]
    assert passage_bounds("a b c d", estimated_spans("a b c d"), 2) == [(0, 3), (4, 7)]


# Everywhere a user meets the engine: the API, the Cohere SDK, the CLI, a job, a server backend.

def test_the_api_reads_long_documents_as_passages(open_sidecar, reranker: Qwen3Reranker) -> None:
    import requests

    documents = ["Beijing.", ENGLISH]
    answer = requests.post(f"{open_sidecar.url}/api/rerank", timeout=120, json={
        "queries": [QUERY], "documents": [documents], "passage_tokens": N}).json()
    [[judged_short, judged_long]] = reranker.judge_many([Query(QUERY, documents, passage_tokens=N)])
    items = {r["index"]: r for r in answer["results"][0]}
    assert items[1]["score"] == pytest.approx(judged_long.score, abs=SCORE_TOLERANCE)
    best = judged_long.best_passage()
    assert (items[1]["passage_start"], items[1]["passage_end"]) == (best.start, best.end)
    bad = requests.post(f"{open_sidecar.url}/api/rerank", timeout=60, json={
        "queries": [QUERY], "documents": [documents], "passage_tokens": 0})
    assert bad.status_code == 422 and "passage_tokens" in bad.text
    too_big = requests.post(f"{open_sidecar.url}/api/rerank", timeout=60, json={
        "queries": [QUERY], "documents": [documents], "passage_tokens": 100_000})
    assert too_big.status_code == 400 and "more than the" in too_big.json()["detail"]
    lonely = requests.post(f"{open_sidecar.url}/v1/rerank", timeout=60, json={
        "query": QUERY, "documents": documents, "max_chunks_per_doc": 0})
    assert lonely.status_code == 422


def test_the_cohere_sdk_asks_for_chunks_and_gets_the_best_chunks_score(keyed_sidecar,
                                                                         reranker: Qwen3Reranker) -> None:
    import cohere
    from conftest import SIDECAR_KEY

    documents = ["Gravity pulls things down.", ENGLISH * 3]  # over 2,000 tokens: more than 4 chunks of 512
    answer = cohere.Client(api_key=SIDECAR_KEY, base_url=keyed_sidecar.url).rerank(
        model="m", query=QUERY, documents=documents, max_chunks_per_doc=4)
    [judged] = reranker.judge_many([Query(QUERY, documents, passage_tokens=512, max_passages=4)])
    assert {r.index: r.relevance_score for r in answer.results} == pytest.approx(
        {i: j.score for i, j in enumerate(judged)}, abs=SCORE_TOLERANCE)
    assert judged[1].truncated is True and len(judged[1].passages) == 4  # 4 chunks of a longer document


def test_the_cli_ranks_by_passages_and_writes_the_best_one(tiny_model_dir, tmp_path) -> None:
    import json
    import subprocess
    import sys

    docs = tmp_path / "docs.txt"
    docs.write_text(f"Beijing.\n{ENGLISH}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "reranker", "rank", "--query", QUERY, "--docs", str(docs),
                           "--model", str(tiny_model_dir), "--passage-tokens", str(N), "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {r["index"]: r for r in json.loads(done.stdout)}
    long = rows[1]
    assert long["passage"] == ENGLISH[long["passage_start"]:long["passage_end"]] and long["passage"] != ENGLISH
    assert rows[0]["passage"] == "Beijing."  # a short document is its one passage
    refused = subprocess.run([sys.executable, "-m", "reranker", "rank", "--query", QUERY, "--docs", str(docs),
                              "--model", str(tiny_model_dir), "--passage-tokens", "0"], capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 1 and "at least 1 token" in refused.stderr


def test_a_server_without_passages_of_its_own_gets_them_made_here(open_sidecar, reranker: Qwen3Reranker) -> None:
    from reranker import open_backend

    via_api = open_backend(f"{open_sidecar.url}/v1/rerank")  # a Cohere-style API: no passages there
    [[judged]] = via_api.judge_many([Query(QUERY, [ENGLISH], passage_tokens=N)])
    assert judged.passages is not None and len(judged.passages) > 1
    alone = reranker.judge(QUERY, [ENGLISH[p.start:p.end] for p in judged.passages])
    assert [p.score for p in judged.passages] == pytest.approx([j.score for j in alone], abs=SCORE_TOLERANCE)
    sidecar = open_backend(open_sidecar.url)  # a sidecar reads passages itself, exactly
    [[remote]] = sidecar.judge_many([Query(QUERY, [ENGLISH], passage_tokens=N)])
    [[local]] = reranker.judge_many([Query(QUERY, [ENGLISH], passage_tokens=N)])
    assert remote.score == pytest.approx(local.score, abs=SCORE_TOLERANCE)
    assert (remote.best_passage().start, remote.best_passage().end) == (local.best_passage().start,
                                                                        local.best_passage().end)


def test_a_job_reads_passages_and_its_results_carry_the_best_one(open_sidecar, reranker: Qwen3Reranker) -> None:
    import time

    import requests

    created = requests.post(f"{open_sidecar.url}/api/jobs", timeout=30, json={
        "queries": [QUERY], "documents": [["Beijing.", ENGLISH]], "passage_tokens": N})
    assert created.status_code == 202, created.text
    url = f"{open_sidecar.url}/api/jobs/{created.json()['id']}"
    deadline = time.monotonic() + 120
    while requests.get(url, timeout=30).json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    [query] = requests.get(f"{url}/results", timeout=30).json()["queries"]
    long = next(r for r in query["results"] if r["index"] == 1)
    [[_, want]] = reranker.judge_many([Query(QUERY, ["Beijing.", ENGLISH], passage_tokens=N)])
    assert long["score"] == pytest.approx(want.score, abs=SCORE_TOLERANCE)
    assert (long["passage_start"], long["passage_end"]) == (want.best_passage().start, want.best_passage().end)
