"""Random-weight Qwen3 models in the real architecture, for tests and benchmarks (their scores mean nothing).

The real weights cannot be downloaded everywhere; a model of the same shape and tokenizer exercises the
same arithmetic, memory and token counts. `build_test_tokenizer` makes a small byte-level BPE with the
Qwen chat tokens, for machines without the real tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED_TOKENS = ["<think>", "</think>"]
TINY_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16)
_CORPUS = [
    "yes no yes no Yes No", "Judge whether the Document meets the requirements based on the Query and the "
    "Instruct provided. Note that the answer can only be \"yes\" or \"no\".", "system user assistant",
    "<Instruct>: Given a web search query, retrieve relevant passages that answer the query",
    "<Query>: What is the capital of China?", "<Document>: The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other.", "def f(x): return x * 2  # code",
    "中国的首都是北京。重力是一种使两个物体相互吸引的力。", "机器学习 深度学习 检索 排序 问答",
    "The quick brown fox jumps over the lazy dog 0123456789 😀 🚀 ✓",
]


def build_test_tokenizer(dest: Path) -> PreTrainedTokenizerFast:
    """A byte-level BPE with Qwen's control tokens, so every byte sequence tokenizes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    fast.add_tokens(ADDED_TOKENS)
    fast.save_pretrained(dest)
    return fast


def build_random_model(dest: Path, tokenizer_dir: Path | None = None, config_path: Path | None = None,
                       seed: int = 0, init_std: float | None = None, **shape: int) -> Path:
    """Save a random Qwen3ForCausalLM and its tokenizer into `dest`, loadable as Qwen3Reranker(model=dest).

    config_path: an architecture config.json (e.g. the real 0.6B one); shape: fields that override it.
    init_std: weight spread; larger than the default 0.02 makes a tiny model's scores differ visibly.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is not None:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        tokenizer.save_pretrained(dest)
    else:
        tokenizer = build_test_tokenizer(dest)
    fields = json.loads(Path(config_path).read_text()) if config_path else {}
    fields.pop("architectures", None)
    fields.update(shape)
    fields["vocab_size"] = max(fields.get("vocab_size", 0), len(tokenizer))
    fields.setdefault("tie_word_embeddings", True)
    if init_std is not None:
        fields["initializer_range"] = init_std
    config = Qwen3Config(**fields)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config).eval()
    saved_dtype = fields.get("dtype") or fields.get("torch_dtype")
    if saved_dtype in ("bfloat16", "float16"):
        model = model.to(getattr(torch, saved_dtype))
    model.save_pretrained(dest)
    return dest
