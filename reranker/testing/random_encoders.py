"""Tiny random-weight BERT models saved as real checkpoints, for the tests of other cross-encoders and of dense first
stages: a one-label cross-encoder (as bge-reranker and MiniLM are saved) and a sentence-transformers embedding model
with a query prompt of its own (as Qwen3-Embedding is saved)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LETTERS = [*"abcdefghijklmnopqrstuvwxyz0123456789.,?:", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789")]


def vocabulary_of(texts: Iterable[str]) -> list[str]:
    """WordPiece vocabulary for `texts` as BERT's basic tokenizer splits them (lowercased words, each Chinese
    character alone), with single letters and digits for anything else."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    normalizer, splitter = BertNormalizer(lowercase=True), BertPreTokenizer()
    words = dict.fromkeys(w for text in texts for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    return list(dict.fromkeys([*SPECIAL, *LETTERS, *words]))


def _save_tokenizer(dest: Path, vocabulary: list[str]) -> None:
    from transformers import BertTokenizer

    dest.mkdir(parents=True, exist_ok=True)
    BertTokenizer(vocab={word: n for n, word in enumerate(vocabulary)}, model_max_length=256).save_pretrained(dest)


def _config(vocabulary: list[str], **more: object):
    from transformers import BertConfig

    return BertConfig(vocab_size=len(vocabulary), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=256, initializer_range=0.5, **more)


def build_cross_encoder(dest: Path, vocabulary: list[str], seed: int = 0) -> Path:
    """A BertForSequenceClassification with one label and its WordPiece tokenizer, saved in `dest`."""
    from transformers import BertForSequenceClassification

    _save_tokenizer(dest, vocabulary)
    torch.manual_seed(seed)
    BertForSequenceClassification(_config(vocabulary, num_labels=1)).eval().save_pretrained(dest)
    return dest


def build_embedding_model(dest: Path, vocabulary: list[str], query_prompt: str = "query: ", seed: int = 0) -> Path:
    """A sentence-transformers model (a BertModel, mean pooling) with `query_prompt` as its "query" prompt, saved in
    `dest` as SentenceTransformer.save writes it (modules.json, config_sentence_transformers.json)."""
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    bare = dest.with_name(f"{dest.name}-bare")
    _save_tokenizer(bare, vocabulary)
    torch.manual_seed(seed)
    BertModel(_config(vocabulary)).eval().save_pretrained(bare)
    SentenceTransformer(str(bare), device="cpu", prompts={"query": query_prompt, "document": ""}).save(str(dest))
    return dest


def into_hub_cache(folder: Path, repo_id: str, cache: Path, commit: str = "0" * 40) -> Path:
    """`folder`'s files laid out in the hub cache `cache` (HF_HUB_CACHE) as a download of `repo_id` at `commit`
    leaves them, so that with HF_HUB_OFFLINE=1 the hub id opens them as a downloaded model would."""
    import shutil

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
