"""Qwen3-Reranker's sequence-classification form (`python -m reranker export MODEL --to seq-cls OUT`) and the backend
over sentence-transformers' CrossEncoder (engine/cross_encoder.py): the export scores as the engine does through a
real CrossEncoder, our backend and `rank`; a bge-like cross-encoder scores as CrossEncoder's own predict."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import LOGIT_TOLERANCE, SCORE_TOLERANCE
from transformers import AutoTokenizer

from reranker import Query, Qwen3Reranker, open_backend
from reranker.core.backend import ScoringStopped, StopScoring
from reranker.core.failures import BadRequest, PromptTooLong, UnsupportedOption
from reranker.core.prompt import ASSISTANT_SUFFIX, DEFAULT_INSTRUCTION, classifier_pair
from reranker.engine.cross_encoder import CrossEncoderReranker, is_sequence_classifier
from reranker.engine.seq_cls_export import PROMPT_FORM, PROMPT_MARKER, export_seq_cls
from reranker.testing.random_encoders import build_embedding_model, into_hub_cache, vocabulary_of

sentence_transformers = pytest.importorskip("sentence_transformers")

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    ("capital of China", ["Beijing is the capital of China.", "Gravity is a force.", "Paris is in France."], None),
    ("中国的首都", ["中国的首都是北京。", "重力是一种力。", "机器学习 深度学习"], None),
    ("capital of China", ["Beijing is the capital of China.", "def f(x): return x * 2"], "Find the city named"),
]
WORDS = ("the capital of china is beijing paris in france gravity a force that attracts two bodies towards each "
         "other what where").split()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "reranker", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


@pytest.fixture(scope="module")
def seq_cls_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported by the command, as a user runs it."""
    out = tmp_path_factory.mktemp("export") / "tiny-seq-cls"
    done = run_cli("export", str(tiny_model_dir), "--to", "seq-cls", str(out))
    assert done.returncode == 0, done.stderr
    assert "README.md" in done.stdout
    return out


@pytest.fixture(scope="module")
def bge_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight BERT cross-encoder with one label and its WordPiece tokenizer, as bge-reranker and
    MiniLM are saved."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    dest = tmp_path_factory.mktemp("models") / "tiny-bert-cross-encoder"
    dest.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz.,?",
             *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"), *"中国的首都是北京重力一种"]
    tokenizer = BertTokenizer(vocab={word: n for n, word in enumerate(vocab)}, model_max_length=128)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1, initializer_range=0.5)
    BertForSequenceClassification(config).eval().save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


def test_the_export_is_a_one_label_classifier_with_a_readme(seq_cls_dir: Path) -> None:
    config = json.loads((seq_cls_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForSequenceClassification"]
    assert config["id2label"] == {"0": "LABEL_0"} and config[PROMPT_MARKER] == PROMPT_FORM
    assert config["dtype"] == "float32"  # the source's
    tokenizer = AutoTokenizer.from_pretrained(seq_cls_dir)
    assert config["pad_token_id"] == tokenizer.pad_token_id is not None and tokenizer.padding_side == "right"
    assert tokenizer.chat_template is None
    readme = (seq_cls_dir / "README.md").read_text()
    query_part, document_part = classifier_pair("{query}", "{document}", "{instruction}")
    assert query_part in readme and document_part in readme
    assert repr(query_part) in readme and repr(document_part) in readme and repr(ASSISTANT_SUFFIX) in readme
    for words in ("text-embeddings-router", "infinity_emb", "vllm serve", "--task score", "CrossEncoder",
                  DEFAULT_INSTRUCTION):
        assert words in readme
    assert is_sequence_classifier(str(seq_cls_dir))


@pytest.mark.parametrize(("query", "documents", "instruction"), CASES)
def test_crossencoder_on_the_prompt_halves_gives_the_engines_scores(
        seq_cls_dir: Path, reranker: Qwen3Reranker, query: str, documents: list[str], instruction: str | None) -> None:
    """Sent as the README says (the document part without the prompt's end, which the export's tokenizer adds)."""
    model = sentence_transformers.CrossEncoder(str(seq_cls_dir), device="cpu")
    expected = reranker.score(query, documents, instruction)
    scores = model.predict([classifier_pair(query, d, instruction) for d in documents])
    assert max(abs(float(a) - b) for a, b in zip(scores, expected)) < SCORE_TOLERANCE


def test_crossencoder_cutting_a_long_document_itself_keeps_the_question(seq_cls_dir: Path,
                                                                          tiny_model_dir: Path) -> None:
    """sentence-transformers cuts a pair over its max_length from the end of the longer text (the document; the query
    part, about 60 tokens, stays whole while it is under half the limit); the export's tokenizer adds the prompt's
    end after the cut, so the model still reads the question and scores the document's beginning as the engine does
    at that length."""
    model = sentence_transformers.CrossEncoder(str(seq_cls_dir), device="cpu", max_length=300)
    engine = Qwen3Reranker(model=str(tiny_model_dir), device="cpu", max_length=300)
    documents = ["The capital of China is Beijing. " * 80, "中国的首都是北京。重力是一种力。" * 60]
    pairs = [classifier_pair("capital of China", d) for d in documents]
    encoded = model.tokenizer([p[0] for p in pairs], [p[1] for p in pairs], truncation=True, max_length=300)
    end = model.tokenizer.encode(ASSISTANT_SUFFIX, add_special_tokens=False)
    assert all(len(ids) == 300 and ids[-len(end):] == end for ids in encoded["input_ids"])
    judged = engine.judge_many([Query("capital of China", documents)])[0]
    assert all(j.truncated and j.tokens == 300 for j in judged)
    scores = model.predict(pairs)
    assert [float(s) for s in scores] == pytest.approx([j.score for j in judged], abs=SCORE_TOLERANCE)


def test_our_backend_on_the_export_gives_the_engines_judgements(seq_cls_dir: Path, reranker: Qwen3Reranker) -> None:
    backend = open_backend(str(seq_cls_dir), device="cpu")
    assert isinstance(backend, CrossEncoderReranker)
    can = backend.capabilities
    assert can.in_process and can.instruction and can.yields_between_passes
    assert can.kind == "cross-encoder (sentence-transformers)"
    queries = [Query(q, docs, instruction) for q, docs, instruction in CASES]
    for got, expected in zip(backend.judge_many(queries), reranker.judge_many(queries)):
        assert [j.score for j in got] == pytest.approx([j.score for j in expected], abs=SCORE_TOLERANCE)
        assert [j.logit for j in got] == pytest.approx([j.logit for j in expected], abs=LOGIT_TOLERANCE)
        assert [(j.tokens, j.truncated) for j in got] == [(j.tokens, j.truncated) for j in expected]


def test_our_backend_cuts_long_documents_as_the_engine(seq_cls_dir: Path, tiny_model_dir: Path) -> None:
    engine = Qwen3Reranker(model=str(tiny_model_dir), device="cpu", max_length=100)
    backend = open_backend(str(seq_cls_dir), device="cpu", max_length=100)
    documents = ["The capital of China is Beijing. " * 20, "中国的首都是北京。重力是一种力。" * 10, "short",
                 "def f(x): return x * 2  # code\n" * 40]
    queries = [Query("capital of China", documents, keep_document_end=end, document_tokens=cap)
               for end in (False, True) for cap in (None, 7)]
    queries.append(Query("capital", documents, "Find the city named", passage_tokens=16, max_passages=3))
    for got, expected in zip(backend.judge_many(queries), engine.judge_many(queries)):
        assert [j.score for j in got] == pytest.approx([j.score for j in expected], abs=SCORE_TOLERANCE)
        assert [(j.tokens, j.truncated) for j in got] == [(j.tokens, j.truncated) for j in expected]
        assert [[(p.start, p.end) for p in j.passages or ()] for j in got] == \
            [[(p.start, p.end) for p in j.passages or ()] for j in expected]


def test_rank_on_the_export_ranks_as_the_engine(seq_cls_dir: Path, reranker: Qwen3Reranker, tmp_path: Path) -> None:
    query, documents, instruction = CASES[2]
    (tmp_path / "docs.txt").write_text("\n".join(documents) + "\n", encoding="utf-8")
    done = run_cli("rank", "--model", str(seq_cls_dir), "--query", query, "--docs", str(tmp_path / "docs.txt"),
                   "--instruction", instruction, "--format", "json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    expected = reranker.rank(query, documents, instruction)
    assert [r["index"] for r in payload] == [r.index for r in expected]
    assert [r["score"] for r in payload] == pytest.approx([r.score for r in expected], abs=SCORE_TOLERANCE)


def test_a_source_with_a_chat_template_exports_without_it(tiny_model_dir: Path, reranker: Qwen3Reranker,
                                                          tmp_path: Path) -> None:
    """sentence-transformers would wrap each pair in a tokenizer's chat template (the real Qwen3 tokenizer has
    one): the export leaves it out, so the pair is read as two plain texts."""
    source = Path(shutil.copytree(tiny_model_dir, tmp_path / "with-chat-template"))
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    tokenizer.save_pretrained(source)
    out = export_seq_cls(str(source), tmp_path / "out")
    query, documents, instruction = CASES[0]
    scores = sentence_transformers.CrossEncoder(str(out), device="cpu").predict(
        [classifier_pair(query, d, instruction) for d in documents])
    assert [float(s) for s in scores] == pytest.approx(reranker.score(query, documents), abs=SCORE_TOLERANCE)


def test_rank_on_a_bge_like_cross_encoder_gives_crossencoders_scores(bge_dir: Path, tmp_path: Path) -> None:
    query = "capital of china"
    documents = ["beijing is the capital of china.", "gravity is a force.", "中国的首都是北京"]
    (tmp_path / "docs.txt").write_text("\n".join(documents) + "\n", encoding="utf-8")
    done = run_cli("rank", "--model", str(bge_dir), "--query", query, "--docs", str(tmp_path / "docs.txt"),
                   "--format", "json")
    assert done.returncode == 0, done.stderr
    model = sentence_transformers.CrossEncoder(str(bge_dir), device="cpu")
    expected = model.predict([(query, d) for d in documents], activation_fn=torch.nn.Sigmoid())
    got = {r["index"]: r["score"] for r in json.loads(done.stdout)}
    assert [got[i] for i in range(len(documents))] == pytest.approx([float(s) for s in expected], abs=1e-6)


def test_a_bge_like_cross_encoder_refuses_an_instruction(bge_dir: Path, tmp_path: Path) -> None:
    backend = open_backend(str(bge_dir), device="cpu")
    assert isinstance(backend, CrossEncoderReranker) and not backend.capabilities.instruction
    assert backend.judge("capital", ["beijing"], DEFAULT_INSTRUCTION)  # the default is no instruction of its own
    with pytest.raises(UnsupportedOption, match="takes no instruction"):
        backend.judge("capital", ["beijing"], "Find the city named")
    (tmp_path / "docs.txt").write_text("beijing\n", encoding="utf-8")
    done = run_cli("rank", "--model", str(bge_dir), "--query", "capital", "--docs", str(tmp_path / "docs.txt"),
                   "--instruction", "Find the city named")
    assert done.returncode == 1 and "takes no instruction" in done.stderr and "Traceback" not in done.stderr


def test_a_document_too_long_is_cut_refused_or_read_in_passages(bge_dir: Path) -> None:
    backend = open_backend(str(bge_dir), device="cpu", max_length=24)
    long = "the capital of china is beijing. " * 8
    [whole, cut] = backend.judge("capital", ["beijing", long])
    assert not whole.truncated and cut.truncated and cut.tokens <= 24
    with pytest.raises(PromptTooLong):
        backend.judge_many([Query("capital", [long], refuse_truncation=True)])
    [[first], [last]] = backend.judge_many([Query("capital", [long], document_tokens=4),
                                            Query("capital", [long], document_tokens=4, keep_document_end=True)])
    assert first.truncated and last.truncated and first.tokens == last.tokens
    [alone_first, alone_last] = backend.judge("capital", ["the capital of china", "china is beijing."])
    assert (first.score, last.score) == pytest.approx((alone_first.score, alone_last.score), abs=1e-6)
    [[read]] = backend.judge_many([Query("capital", [long], passage_tokens=10)])
    assert read.passages is not None and len(read.passages) > 1 and not read.truncated
    assert read.score == max(p.score for p in read.passages)


def test_scoring_stops_between_passes(bge_dir: Path) -> None:
    backend = CrossEncoderReranker(str(bge_dir), device="cpu", batch_size=1)
    told: list[int] = []

    def progress(done: int, total: int) -> None:
        told.append(done)
        if done == 2:
            raise StopScoring

    with pytest.raises(ScoringStopped) as stopped:
        backend.judge_many([Query("capital", ["beijing", "paris", "gravity"])], progress)
    assert told == [1, 2] and sum(j is not None for j in stopped.value.partial[0]) == 2


def test_only_sequence_classifiers_leave_the_engine(tiny_model_dir: Path, bge_dir: Path) -> None:
    assert is_sequence_classifier(str(bge_dir))
    assert not is_sequence_classifier(str(tiny_model_dir))
    assert not is_sequence_classifier("Qwen/Qwen3-Reranker-0.6B")
    assert not is_sequence_classifier("nobody/not-in-the-cache")


def test_capabilities_say_what_a_cross_encoder_lacks(bge_dir: Path, seq_cls_dir: Path) -> None:
    bge = open_backend(str(bge_dir), device="cpu").capabilities
    assert not bge.instruction and bge.max_length == 128  # its tokenizer's window, not the engine's 8192
    export = open_backend(str(seq_cls_dir), device="cpu", max_length=300).capabilities
    assert export.instruction and export.max_length == 300


@pytest.fixture(scope="module")
def hub_cache(bge_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub cache holding the bge-like cross-encoder as `tiny-org/tiny-bge`, as a download leaves it."""
    cache = tmp_path_factory.mktemp("hub")
    into_hub_cache(bge_dir, "tiny-org/tiny-bge", cache)
    return cache


def test_a_cross_encoder_opened_by_its_hub_id_from_the_cache(bge_dir: Path, hub_cache: Path, tmp_path: Path) -> None:
    query, documents = "capital of china", ["beijing is the capital of china.", "gravity is a force."]
    (tmp_path / "docs.txt").write_text("\n".join(documents) + "\n", encoding="utf-8")
    done = run_cli("rank", "--model", "tiny-org/tiny-bge", "--query", query, "--docs", str(tmp_path / "docs.txt"),
                   "--format", "json", env={"HF_HUB_CACHE": str(hub_cache)})
    assert done.returncode == 0, done.stderr
    expected = sentence_transformers.CrossEncoder(str(bge_dir), device="cpu").predict(
        [(query, d) for d in documents], activation_fn=torch.nn.Sigmoid())
    got = {r["index"]: r["score"] for r in json.loads(done.stdout)}
    assert [got[i] for i in range(len(documents))] == pytest.approx([float(s) for s in expected], abs=1e-6)


def test_a_hub_id_not_in_the_cache_offline_is_explained(hub_cache: Path, tmp_path: Path) -> None:
    (tmp_path / "docs.txt").write_text("beijing\n", encoding="utf-8")
    done = run_cli("rank", "--model", "BAAI/bge-reranker-v2-m3", "--query", "capital", "--docs",
                   str(tmp_path / "docs.txt"), env={"HF_HUB_CACHE": str(hub_cache)})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "HF_HUB_OFFLINE=1 is set" in done.stderr
    assert "huggingface-cli download BAAI/bge-reranker-v2-m3" in done.stderr


def test_an_embedding_model_is_not_a_reranker(tmp_path: Path) -> None:
    embedder = build_embedding_model(tmp_path / "embedder", vocabulary_of(WORDS))
    with pytest.raises(BadRequest, match="is not a reranker: its files say it is an embedding model .BertModel"):
        open_backend(str(embedder))
    (tmp_path / "docs.txt").write_text("beijing\n", encoding="utf-8")
    done = run_cli("rank", "--model", str(embedder), "--query", "capital", "--docs", str(tmp_path / "docs.txt"))
    assert done.returncode == 1 and "is not a reranker" in done.stderr and "Traceback" not in done.stderr


def test_the_apis_extra_model_may_be_a_cross_encoder_by_hub_id(tiny_model_dir: Path, bge_dir: Path, hub_cache: Path,
                                                               tmp_path: Path) -> None:
    import requests

    from reranker.testing.sidecar_process import SidecarProcess

    env = {"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(tmp_path), "RERANKER_API_KEY": "",
           "RERANKER_EXTRA_MODELS": "tiny-org/tiny-bge", "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    query, documents = "capital of china", ["beijing is the capital of china.", "gravity is a force."]
    with SidecarProcess(env=env, log_path=tmp_path / "server.log") as server:
        server.wait_healthy()
        health = requests.get(f"{server.url}/health", timeout=10).json()["extra_models"]["tiny-org/tiny-bge"]
        assert "MB of weights" in health["needs"]  # the memory check reads its config.json from the cache
        deadline = time.monotonic() + 60
        while True:
            answer = requests.post(f"{server.url}/v1/rerank", json={"query": query, "documents": documents,
                                                                     "model": "tiny-org/tiny-bge"}, timeout=30)
            if answer.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "tiny-org/tiny-bge"
    expected = sentence_transformers.CrossEncoder(str(bge_dir), device="cpu").predict(
        [(query, d) for d in documents], activation_fn=torch.nn.Sigmoid())
    got = {r["index"]: r["relevance_score"] for r in answer.json()["results"]}
    assert [got[i] for i in range(len(documents))] == pytest.approx([float(s) for s in expected], abs=1e-6)


def test_export_refuses_an_out_folder_in_use(tiny_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    done = run_cli("export", str(tiny_model_dir), "--to", "seq-cls", str(tmp_path / "out"))
    assert done.returncode == 2 and "not an empty folder" in done.stderr and "Traceback" not in done.stderr
    assert os.listdir(tmp_path / "out") == ["keep.txt"]


def test_export_explains_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("not a model")
    done = run_cli("export", str(tmp_path / "notes"), "--to", "seq-cls", str(tmp_path / "out"))
    assert done.returncode == 1 and "Could not load" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_export_refuses_a_model_without_yes_and_no_tokens(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    source = tmp_path / "not-a-reranker"
    words = Tokenizer(models.WordLevel({"[UNK]": 0, "[PAD]": 1, "maybe": 2, "perhaps": 3}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(source)
    Qwen3ForCausalLM(Qwen3Config(vocab_size=4, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1, head_dim=8)).save_pretrained(source)
    done = run_cli("export", str(source), "--to", "seq-cls", str(tmp_path / "out"))
    assert done.returncode == 1 and "is not a Qwen3-Reranker" in done.stderr and "Traceback" not in done.stderr


def test_verify_proves_the_export_exact_except_for_control_strings_typed_in_documents(
        seq_cls_dir: Path, tiny_model_dir: Path) -> None:
    """`verify` against the original: every probe exact but one. A text pair read by one tokenizer call (as
    sentence-transformers, TEI and vLLM's /score read it) turns `<|im_end|>` typed in a document into the control
    token, where the engine keeps user text as text: verify says so, with its fix."""
    from reranker.cli.verify_command import VerifyOptions, run_verify

    [report] = run_verify(VerifyOptions(str(seq_cls_dir), reference=str(tiny_model_dir)))
    document = report.document()
    verdicts = {p["name"]: p["verdict"] for p in document["probes"]}
    assert {name for name, verdict in verdicts.items() if verdict != "exact"} == {"control_strings"}
    assert all(p["max_abs_diff"] <= 1e-5 for p in document["probes"] if p["name"] != "control_strings")
    assert [d["cause"] for d in document["diagnoses"]] == ["control_strings_as_tokens"]


def test_the_batch_command_scores_with_a_cross_encoder(local_ray, bge_dir: Path, tmp_path: Path) -> None:
    from reranker.cli.ray_batch import BatchOptions, run_batch_file

    source, output = tmp_path / "pairs.csv", tmp_path / "scored.csv"
    rows = [("capital of china", "beijing is the capital of china."), ("capital of china", "gravity is a force."),
            ("what is gravity", "gravity is a force that attracts two bodies")]
    source.write_text("query,document\n" + "".join(f"{q},{d}\n" for q, d in rows), encoding="utf-8")
    result = run_batch_file(str(source), str(output), BatchOptions(backend=str(bge_dir)), lambda _: None)
    expected = sentence_transformers.CrossEncoder(str(bge_dir), device="cpu").predict(
        rows, activation_fn=torch.nn.Sigmoid())
    assert result["document"].tolist() == [d for _, d in rows] and set(result["model"]) == {str(bge_dir)}
    assert result["score"].tolist() == pytest.approx([float(s) for s in expected], abs=1e-6)


def test_a_bfloat16_model_exports_the_exact_score_row(tmp_path: Path) -> None:
    """The published checkpoint is bfloat16; "yes" minus "no" of two bfloat16 rows is not a bfloat16 row, so the export
    keeps it in float32: loaded in float32 the export gives the engine's float32 scores."""
    from reranker.testing.random_models import TINY_SHAPE, build_random_model

    source = build_random_model(tmp_path / "bf16-qwen3-reranker", init_std=0.5, dtype="bfloat16", **TINY_SHAPE)
    export = export_seq_cls(str(source), tmp_path / "bf16-seq-cls")
    engine = Qwen3Reranker(model=str(source), device="cpu", dtype="float32")
    exported = open_backend(str(export), device="cpu", dtype="float32")
    for query, documents, instruction in CASES:
        expected = engine.score(query, documents, instruction)
        got = [j.score for j in exported.judge(query, documents, instruction)]
        assert got == pytest.approx(expected, abs=SCORE_TOLERANCE)
