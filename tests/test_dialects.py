"""Every rerank dialect as its own clients send it and read it, against a live sidecar on the tiny model:
the real `cohere` SDK, and for Jina, Dify, RAGFlow, Open WebUI, TEI and vLLM the bodies their docs show."""

from __future__ import annotations

import math

import cohere
import pytest
import requests
from conftest import SCORE_TOLERANCE, SIDECAR_KEY

from reranker import Query, Qwen3Reranker
from reranker.testing.sidecar_process import SidecarProcess

QUERY = "What is the capital of China?"
DOCUMENTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.",
             "北京是中国的首都。", "def f(x): return x * 2", "Shanghai is the largest city in China."]
INSTRUCTION = "Given a question, retrieve passages that answer the question"


def best_first(reranker: Qwen3Reranker, query: Query, top_n: int | None = None) -> list[tuple[int, float, float]]:
    """(index, score, logit) best first, as the engine itself ranks the query."""
    [judgements] = reranker.judge_many([query])
    order = sorted(range(len(judgements)), key=lambda i: (-judgements[i].logit, i))[:top_n]
    return [(i, judgements[i].score, judgements[i].logit) for i in order]


def assert_ranked(got: list[tuple[int, float]], want: list[tuple[int, float, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s, _ in want], abs=SCORE_TOLERANCE)


# The cohere SDK, as LangChain's and LlamaIndex's CohereRerank use it.

@pytest.mark.parametrize("with_key", [True, False])
def test_cohere_sdk_client_v1_and_v2(keyed_sidecar: SidecarProcess, open_sidecar: SidecarProcess, reranker,
                                     with_key: bool) -> None:
    server, key = (keyed_sidecar, SIDECAR_KEY) if with_key else (open_sidecar, "any-key-is-fine")
    want = best_first(reranker, Query(QUERY, DOCUMENTS), top_n=3)

    v1 = cohere.Client(api_key=key, base_url=server.url).rerank(
        model="rerank-v3.5", query=QUERY, documents=DOCUMENTS, top_n=3, return_documents=True)
    assert_ranked([(r.index, r.relevance_score) for r in v1.results], want)
    assert [r.document.text for r in v1.results] == [DOCUMENTS[i] for i, _, _ in want]

    v2 = cohere.ClientV2(api_key=key, base_url=server.url).rerank(
        model="rerank-v3.5", query=QUERY, documents=DOCUMENTS, top_n=3)
    assert_ranked([(r.index, r.relevance_score) for r in v2.results], want)
    assert v2.id and v2.meta.api_version.version == "2"


def test_cohere_sdk_with_a_wrong_key_is_told_so(keyed_sidecar: SidecarProcess) -> None:
    for client in (cohere.Client(api_key="wrong", base_url=keyed_sidecar.url),
                   cohere.ClientV2(api_key="wrong", base_url=keyed_sidecar.url)):
        with pytest.raises(cohere.errors.UnauthorizedError) as caught:
            client.rerank(model="m", query=QUERY, documents=DOCUMENTS)
        assert "wrong API key" in caught.value.body["message"]


def test_cohere_v1_object_documents_with_rank_fields(open_sidecar: SidecarProcess, reranker) -> None:
    documents = [{"title": "Beijing", "text": "The capital of China.", "id": 7},
                 {"title": "Gravity", "text": "A force between masses.", "id": 8}]
    answer = cohere.Client(api_key="k", base_url=open_sidecar.url).rerank(
        model="m", query=QUERY, documents=documents, rank_fields=["title", "text"], return_documents=True)
    joined = [f"title: {d['title']}\ntext: {d['text']}" for d in documents]
    assert_ranked([(r.index, r.relevance_score) for r in answer.results], best_first(reranker, Query(QUERY, joined)))
    assert answer.results[0].document.id in (7, 8)  # the object comes back whole, as Cohere does


# Plain HTTP clients, each with the body its documentation shows.

def post(server: SidecarProcess, path: str, body: object) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, timeout=60)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/rerank", {"model": "jina-reranker-v2-base-multilingual", "query": QUERY, "top_n": 3,  # Jina
                    "documents": DOCUMENTS, "return_documents": True}),
    ("/v1/rerank", {"model": "m", "query": QUERY, "documents": DOCUMENTS, "top_n": 3}),  # Open WebUI
    ("/rerank", {"model": "m", "query": QUERY, "documents": DOCUMENTS, "top_n": 3}),  # Dify, RAGFlow: {base}/rerank
    ("/v1/rerank", {"model": "m", "query": QUERY, "documents": [{"text": d} for d in DOCUMENTS], "top_n": 3,
                    "return_documents": None, "rank_fields": None, "max_chunks_per_doc": None}),  # Cohere's nulls
    ("/rerank", {"model": "m", "query": QUERY, "documents": DOCUMENTS, "top_n": 3, "some_new_field": {"x": 1}}),
])
def test_jina_style_clients(open_sidecar: SidecarProcess, reranker, path: str, body: dict) -> None:
    answer = post(open_sidecar, path, body)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert_ranked([(r["index"], r["relevance_score"]) for r in results], best_first(reranker, Query(QUERY, DOCUMENTS),
                                                                                   top_n=3))
    assert all(r["document"]["text"] == DOCUMENTS[r["index"]] for r in results)
    assert answer.json()["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank", "/v2/rerank"])
def test_vllm_rerank_clients_top_n_0_instruct_and_truncate_prompt_tokens(open_sidecar, reranker, path) -> None:
    body = {"model": "Qwen/Qwen3-Reranker-0.6B", "query": QUERY, "documents": DOCUMENTS, "top_n": 0,
            "instruct": INSTRUCTION, "truncate_prompt_tokens": 4}
    answer = post(open_sidecar, path, body)
    assert answer.status_code == 200, answer.text
    want = best_first(reranker, Query(QUERY, DOCUMENTS, INSTRUCTION, document_tokens=4))
    assert len(want) == len(DOCUMENTS)  # 0 means all
    assert_ranked([(r["index"], r["relevance_score"]) for r in answer.json()["results"]], want)


def test_cohere_v2_max_tokens_per_doc_cuts_documents(open_sidecar: SidecarProcess, reranker) -> None:
    answer = post(open_sidecar, "/v2/rerank", {"model": "m", "query": QUERY, "documents": DOCUMENTS,
                                               "max_tokens_per_doc": 3, "priority": 0})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["results"][0]) == {"index", "relevance_score"}
    assert_ranked([(r["index"], r["relevance_score"]) for r in body["results"]],
                  best_first(reranker, Query(QUERY, DOCUMENTS, document_tokens=3)))
    assert body["meta"]["tokens"]["input_tokens"] == body["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("raw_scores", [False, True])
def test_tei_rerank_answers_a_bare_sorted_list(open_sidecar: SidecarProcess, reranker, raw_scores: bool) -> None:
    answer = post(open_sidecar, "/rerank", {"query": QUERY, "texts": DOCUMENTS, "raw_scores": raw_scores,
                                            "return_text": True, "truncate": False, "truncation_direction": "Right"})
    assert answer.status_code == 200, answer.text
    ranks = answer.json()
    want = best_first(reranker, Query(QUERY, DOCUMENTS))
    assert [r["index"] for r in ranks] == [i for i, _, _ in want]
    assert [r["score"] for r in ranks] == pytest.approx([lg if raw_scores else s for _, s, lg in want], abs=1e-5)
    assert [r["text"] for r in ranks] == [DOCUMENTS[i] for i, _, _ in want]
    plain = post(open_sidecar, "/rerank", {"query": QUERY, "texts": DOCUMENTS}).json()
    assert "text" not in plain[0]


def test_tei_truncation_refused_by_default_and_done_when_asked(keyed_sidecar: SidecarProcess, reranker) -> None:
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {SIDECAR_KEY}"
    long_text = "start " + "word " * 9000 + "finish"
    texts = ["The capital of China is Beijing.", long_text]
    refused = api.post(f"{keyed_sidecar.url}/rerank", json={"query": QUERY, "texts": texts}, timeout=120)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error_type"] == "Validation" and "8,192" in refused.json()["error"]
    for direction, keep_end in (("Right", False), ("Left", True)):
        cut = api.post(f"{keyed_sidecar.url}/rerank", timeout=120, json={
            "query": QUERY, "texts": texts, "truncate": True, "truncation_direction": direction})
        assert cut.status_code == 200, cut.text
        want = best_first(reranker, Query(QUERY, texts, keep_document_end=keep_end))
        assert_ranked([(r["index"], r["score"]) for r in cut.json()], want)


def test_vllm_score_one_to_n_n_to_n_and_the_old_names(open_sidecar: SidecarProcess, reranker) -> None:
    [judgements] = reranker.judge_many([Query(QUERY, DOCUMENTS)])
    for path in ("/score", "/v1/score"):
        for body in ({"model": "m", "queries": QUERY, "documents": DOCUMENTS},
                     {"model": "m", "text_1": QUERY, "text_2": DOCUMENTS},
                     {"model": "m", "queries": [QUERY], "documents": DOCUMENTS}):
            answer = post(open_sidecar, path, body)
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert got["object"] == "list" and got["model"] and isinstance(got["created"], int)
            assert [d["index"] for d in got["data"]] == list(range(len(DOCUMENTS)))  # input order
            assert [d["object"] for d in got["data"]] == ["score"] * len(DOCUMENTS)
            want = [j.score for j in judgements]
            assert [d["score"] for d in got["data"]] == pytest.approx(want, abs=SCORE_TOLERANCE)
            assert got["usage"]["prompt_tokens"] == sum(j.tokens for j in judgements)
    queries = ["What is gravity?", QUERY]
    pairwise = post(open_sidecar, "/score", {"queries": queries, "documents": DOCUMENTS[:2]}).json()
    want = [reranker.score(q, [d])[0] for q, d in zip(queries, DOCUMENTS[:2])]
    assert [d["score"] for d in pairwise["data"]] == pytest.approx(want, abs=SCORE_TOLERANCE)


def test_instruction_by_either_name_and_both_only_when_they_agree(open_sidecar: SidecarProcess, reranker) -> None:
    want = best_first(reranker, Query(QUERY, DOCUMENTS, INSTRUCTION))
    for names in ({"instruction": INSTRUCTION}, {"instruct": INSTRUCTION},
                  {"instruction": INSTRUCTION, "instruct": INSTRUCTION}):
        answer = post(open_sidecar, "/v1/rerank", {"query": QUERY, "documents": DOCUMENTS, **names})
        assert_ranked([(r["index"], r["relevance_score"]) for r in answer.json()["results"]], want)
    clash = post(open_sidecar, "/v1/rerank", {"query": QUERY, "documents": DOCUMENTS, "instruction": "a",
                                              "instruct": "b"})
    assert clash.status_code == 400 and "'instruction' and 'instruct'" in clash.json()["message"]


# Errors: each dialect's own shape, a 4xx with a message a person understands, never a 5xx.

@pytest.mark.parametrize(("path", "body", "status", "read"), [
    ("/v1/rerank", {"query": QUERY}, 422, lambda b: b["message"] + str(b["detail"])),
    ("/v2/rerank", {"query": QUERY}, 422, lambda b: b["message"]),
    ("/v2/rerank", {"query": " ", "documents": ["a"]}, 400, lambda b: b["message"]),
    ("/rerank", {"query": QUERY, "texts": "not a list"}, 422, lambda b: b["error"] + b["error_type"]),
    ("/rerank", {"query": QUERY}, 422, lambda b: b["message"]),
    ("/score", {"queries": ["a", "b"], "documents": ["x", "y", "z"]}, 400, lambda b: b["message"] + b["object"]),
    ("/v1/score", {"queries": QUERY}, 400, lambda b: b["message"]),
    ("/api/rerank", {"queries": [""], "documents": [["x"]]}, 400, lambda b: b["detail"]),
])
def test_bad_bodies_get_the_dialects_error_shape(open_sidecar, path, body, status, read) -> None:
    answer = post(open_sidecar, path, body)
    assert answer.status_code == status, answer.text
    assert len(read(answer.json())) > 10


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank", "/rerank", "/score", "/api/rerank"])
def test_hostile_bytes_are_4xx_naming_the_problem(open_sidecar: SidecarProcess, path: str) -> None:
    url = f"{open_sidecar.url}{path}"
    json_header = {"Content-Type": "application/json"}
    body = {"/score": '{"queries": "q", "documents": ["ok", "bad \\ud800"]}',
            "/api/rerank": '{"queries": ["q"], "documents": [["ok", "bad \\ud800"]]}',
            "/rerank": '{"query": "q", "texts": ["ok", "bad \\ud800"]}'}.get(
        path, '{"query": "q", "documents": ["ok", "bad \\ud800"]}')
    surrogate = requests.post(url, data=body.encode(), headers=json_header, timeout=30)
    assert surrogate.status_code == 400, surrogate.text
    assert "surrogate" in surrogate.text and "documents[" in surrogate.text

    broken = requests.post(url, data=b'{"query": "q\xff\xfe", "documents": ["a"]}', headers=json_header, timeout=30)
    assert broken.status_code == 400 and "not valid UTF-8" in broken.text, broken.text

    deep = requests.post(url, data=(b"[" * 5000) + (b"]" * 5000), headers=json_header, timeout=30)
    assert 400 <= deep.status_code < 500 and ("nests" in deep.text or "valid" in deep.text), deep.text

    plain = requests.post(url, data=b'{"query": "q", "documents": ["a"]}', headers={"Content-Type": "text/plain"},
                          timeout=30)
    assert plain.status_code == 415 and "application/json" in plain.text, plain.text


def test_a_huge_wrong_shaped_body_gets_a_short_422(open_sidecar: SidecarProcess) -> None:
    body = {"query": "q", "documents": [3] * 20_000}
    answer = post(open_sidecar, "/v1/rerank", body)
    assert answer.status_code in (413, 422), answer.text[:300]
    assert len(answer.content) < 20_000
    if answer.status_code == 422:
        assert len(answer.json()["detail"]) <= 20 and "more" in answer.json()["message"]


def test_blank_queries_are_refused_and_empty_documents_scored(open_sidecar: SidecarProcess) -> None:
    blank = post(open_sidecar, "/v1/rerank", {"query": "  ", "documents": ["a"]})
    assert blank.status_code == 400 and "query is blank" in blank.json()["message"]
    empty_document = post(open_sidecar, "/v1/rerank", {"query": "q", "documents": ["", "a"]})
    assert empty_document.status_code == 200
    assert all(math.isfinite(r["relevance_score"]) for r in empty_document.json()["results"])


@pytest.mark.parametrize(("path", "body", "says"), [
    ("/v1/rerank", '{"query": "q", "documents": [{"text": "a", "source": "bad \\ud800"}]}', "documents[0].source"),
    ("/v2/rerank", '{"query": "q", "documents": [{"text": "a", "meta": {"\\udfff": 1}}], "return_documents": true}',
     "documents[0]"),
    ("/v1/rerank", '{"query": "q", "documents": ["a"], "truncate_prompt_tokens": 0}', "truncate_prompt_tokens"),
])
def test_what_comes_back_whole_is_checked_too(open_sidecar: SidecarProcess, path: str, body: str, says: str) -> None:
    answer = requests.post(f"{open_sidecar.url}{path}", data=body.encode(),
                           headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["message"]


def test_rerank_with_null_texts_and_documents_is_the_jina_shape(open_sidecar: SidecarProcess, reranker) -> None:
    answer = post(open_sidecar, "/rerank", {"query": QUERY, "texts": None, "documents": DOCUMENTS,
                                            "rank_fields": None})
    assert answer.status_code == 200, answer.text
    assert_ranked([(r["index"], r["relevance_score"]) for r in answer.json()["results"]],
                  best_first(reranker, Query(QUERY, DOCUMENTS)))


def test_rank_fields_join_values_as_text(open_sidecar: SidecarProcess, reranker) -> None:
    documents = [{"title": "Beijing", "tags": ["capital", "城市"], "year": 1949}]
    answer = post(open_sidecar, "/v1/rerank", {"query": QUERY, "documents": documents,
                                               "rank_fields": ["title", "tags", "year"]})
    assert answer.status_code == 200, answer.text
    joined = 'title: Beijing\ntags: ["capital", "城市"]\nyear: 1949'
    assert answer.json()["results"][0]["relevance_score"] == pytest.approx(reranker.score(QUERY, [joined])[0],
                                                                            abs=SCORE_TOLERANCE)


def tei_error(body: dict, status: int, says: str) -> bool:
    """What a TEI client reads of an error: `error` and `error_type` (text-embeddings-inference's ErrorResponse)."""
    return says in body["error"] and isinstance(body["error_type"], str)


def vllm_error(body: dict, status: int, says: str) -> bool:
    """What a vLLM client reads of an error: its error object (`message`, `type`, `code`), nested as vLLM 0.32 sends
    it and flat as older vLLM did."""
    nested = body["error"]
    return (says in nested["message"] and nested["code"] == status and nested["type"]
            and body["object"] == "error" and says in body["message"] and body["code"] == status)


@pytest.mark.parametrize(("path", "body", "reads"), [
    ("/rerank", {"query": QUERY, "texts": ["d"]}, tei_error),
    ("/score", {"queries": QUERY, "documents": ["d"]}, vllm_error),
    ("/v1/score", {"text_1": QUERY, "text_2": ["d"]}, vllm_error),
])
def test_a_missing_key_and_a_body_too_big_answer_in_the_clients_own_error_shape(keyed_sidecar: SidecarProcess,
                                                                                 path: str, body: dict, reads) -> None:
    url = f"{keyed_sidecar.url}{path}"
    refused = requests.post(url, json=body, timeout=60)
    assert refused.status_code == 401 and reads(refused.json(), 401, "missing API key"), refused.text
    wrong = requests.post(url, json=body, timeout=60, headers={"Authorization": "Bearer not-the-key"})
    assert wrong.status_code == 401 and reads(wrong.json(), 401, "wrong API key"), wrong.text
    huge = {**body, "query": "q" * (11 * 1024 * 1024)} if "texts" in body else {**body, "documents": ["d" * 11_000_000]}
    too_big = requests.post(url, json=huge, timeout=120, headers={"Authorization": f"Bearer {SIDECAR_KEY}"})
    assert too_big.status_code == 413 and reads(too_big.json(), 413, "RERANKER_MAX_BODY_BYTES"), too_big.text[:300]
