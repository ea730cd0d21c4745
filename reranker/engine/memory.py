"""How much memory a Qwen3-Reranker takes, from its config.json, before anything is loaded; and how much is free.

A second model on one machine must be refused before it loads, not after the machine starts swapping: the workbench
(before it opens another model in its process) and the sidecar (before it loads an extra model) ask `fit_of`.
No torch here.
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


@dataclass(frozen=True)
class Fit:
    """Whether a model fits in the memory free now, as far as can be told before it loads."""

    model: str
    needed: MemoryEstimate | None
    """None when its config.json is not at hand (a hub model not downloaded yet)."""
    free: int | None
    """Bytes free now; None where the system cannot tell."""

    @property
    def fits(self) -> bool:
        """False only when both are known and the model needs more than is free."""
        return self.needed is None or self.free is None or self.needed.total_bytes <= self.free

    def text(self) -> str:
        """'<model>: about 3.0 GB (…); 12.3 GB free.', or that its size is not known yet."""
        if self.needed is None:
            return f"{self.model}: its size is not known before it downloads."
        return f"{self.model}: {self.needed.text()}" + (f"; {_size(self.free)} free." if self.free is not None else ".")

    def refusal(self, where: str) -> str:
        """Why it is not loaded `where` ("here", "on the sidecar's machine")."""
        return (f"{self.model} needs {self.needed.text() if self.needed else 'more memory'}, but "
                f"{_size(self.free or 0)} is free {where}, so it is not loaded")


def fit_of(model: str, bytes_per_parameter: int) -> Fit:
    """How `model` (a hub id or folder) would fit at `bytes_per_parameter` (4: float32, 2: bfloat16)."""
    config = read_config(model)
    return Fit(model, estimate(config, bytes_per_parameter) if config is not None else None, available_bytes())


def _size(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def _count(parameters: int) -> str:
    return f"{parameters / 1e9:.2f}B" if parameters >= 1e9 else f"{parameters / 1e6:.0f}M"


ENCODER_TYPES = frozenset({"bert", "roberta", "xlm-roberta", "electra", "camembert"})
"""model_type values of BERT-style encoders, the cross-encoders sentence-transformers loads beside Qwen3."""


def parameter_count(config: dict) -> int:
    """A model's parameters from its config: a Qwen3-style decoder (gated MLP, untied LM head when not tied), or a
    BERT-style encoder cross-encoder (bge-reranker, MiniLM: position embeddings, a two-matrix MLP with biases, a
    pooler and a one-label head); the fit check reads it before anything loads."""
    if config.get("model_type") in ENCODER_TYPES:
        return _encoder_parameter_count(config)
    hidden, vocab, layers = config["hidden_size"], config["vocab_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2 + 2 * head_dim
    mlp = 3 * hidden * config["intermediate_size"]
    per_layer = attention + mlp + 2 * hidden
    head = 0 if config.get("tie_word_embeddings", True) else vocab * hidden
    return vocab * hidden + layers * per_layer + hidden + head


def _encoder_parameter_count(config: dict) -> int:
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    embeddings = ((config["vocab_size"] + config.get("max_position_embeddings", 512) + config.get("type_vocab_size", 2))
                  * hidden + 2 * hidden)
    per_layer = 4 * (hidden * hidden + hidden) + 2 * hidden * inner + inner + hidden + 4 * hidden
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 1
    head = hidden * hidden + hidden + hidden * labels + labels  # the pooler or classifier's dense layer, then labels
    return embeddings + config["num_hidden_layers"] * per_layer + head


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
