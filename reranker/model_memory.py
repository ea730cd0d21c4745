"""How much memory a Qwen3-Reranker takes, from its config.json, before anything is loaded; and how much is free.

A second model on one machine must be refused before it loads, not after the machine starts swapping: the
workbench asks this before it opens another model in its process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

WORKING_SHARE = 0.25
"""Activations, the prefix cache and allocator slack on top of the weights, as a share of them (measured on the
0.6B in float32 on CPU: 2.38 GB of weights, 3.06 GB at peak while scoring 50 documents, docs/BENCHMARKS.md)."""


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    weights_bytes: int
    total_bytes: int
    """Weights plus working memory."""

    def text(self) -> str:
        return (f"about {_size(self.total_bytes)} ({_count(self.parameters)} parameters, "
                f"{_size(self.weights_bytes)} of weights)")


def _size(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def _count(parameters: int) -> str:
    return f"{parameters / 1e9:.2f}B" if parameters >= 1e9 else f"{parameters / 1e6:.0f}M"


def parameter_count(config: dict) -> int:
    """A Qwen3 decoder's parameters from its config: embeddings, the layers, the final norm, an untied LM head."""
    hidden, vocab, layers = config["hidden_size"], config["vocab_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2 + 2 * head_dim
    mlp = 3 * hidden * config["intermediate_size"]
    per_layer = attention + mlp + 2 * hidden
    head = 0 if config.get("tie_word_embeddings", True) else vocab * hidden
    return vocab * hidden + layers * per_layer + hidden + head


def estimate(config: dict, bytes_per_parameter: int) -> MemoryEstimate:
    parameters = parameter_count(config)
    weights = parameters * bytes_per_parameter
    return MemoryEstimate(parameters, weights, int(weights * (1 + WORKING_SHARE)))


def read_config(model: str) -> dict | None:
    """The model's config.json from its folder or the local hub cache; None when neither has it (it would be
    downloaded on load)."""
    folder = Path(model).expanduser()
    path: Path | str | None = folder / "config.json" if folder.is_dir() else None
    if path is None:
        from huggingface_hub import try_to_load_from_cache

        try:
            found = try_to_load_from_cache(model, "config.json")
        except ValueError:  # HFValidationError: a path that is not there, or not a hub id
            return None
        path = found if isinstance(found, str) else None
    if path is None or not Path(path).exists():
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


def available_bytes() -> int | None:
    """Memory the operating system can give a new model now (Linux MemAvailable); None where it cannot tell."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
