"""A model's small JSON files (config.json, config_sentence_transformers.json) read without its weights: from its
folder, from the local hub cache, or, where the hub may be asked (HF_HUB_OFFLINE unset), downloaded alone. What kind
of model a name is (a Qwen3-Reranker for the engine, a cross-encoder, an embedding model) is decided from them before
anything heavy is loaded."""

from __future__ import annotations

import json
from pathlib import Path

CROSS_ENCODER = "cross-encoder"
EMBEDDING = "embedding"
CAUSAL_LM = "causal-lm"
UNKNOWN = "unknown"


def model_json(model: str, filename: str) -> dict | None:
    """`filename` of `model` (a folder or a hub id) as a dict; None when it has none, or it cannot be found here
    and the hub may not (or cannot) be asked."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        return _read(folder / filename)
    try:
        from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(model, filename)
    except ValueError:  # HFValidationError: neither a folder that is there nor a hub id
        return None
    if isinstance(found, str):
        return _read(Path(found))
    if found is not None or constants.HF_HUB_OFFLINE:  # a cached "no such file", or the hub may not be asked
        return None
    try:
        return _read(Path(hf_hub_download(model, filename)))
    except Exception:  # noqa: BLE001 - unreachable hub, unknown id, no such file: the model's loader tells which
        return None


def model_kind(model: str) -> str:
    """CROSS_ENCODER (a *ForSequenceClassification, or saved as sentence-transformers' CrossEncoder), EMBEDDING (a
    SentenceTransformer, or a bare encoder: *Model), CAUSAL_LM (*ForCausalLM: the Qwen3 engine's), else UNKNOWN
    (no config.json found, or another architecture)."""
    st_config = model_json(model, "config_sentence_transformers.json") or {}
    config = model_json(model, "config.json") or {}
    st_type = st_config.get("model_type") if isinstance(st_config, dict) else None
    architectures = [str(a) for a in (config.get("architectures") or [])] if isinstance(config, dict) else []
    if st_type == "CrossEncoder" or any(a.endswith("ForSequenceClassification") for a in architectures):
        return CROSS_ENCODER
    if st_type == "SentenceTransformer" or (architectures and all(a.endswith("Model") for a in architectures)):
        return EMBEDDING
    if any(a.endswith("ForCausalLM") for a in architectures):
        return CAUSAL_LM
    return UNKNOWN


def architectures_text(model: str) -> str:
    """The architectures config.json names, for a message ("BertModel"), or what is known instead."""
    config = model_json(model, "config.json") or {}
    names = config.get("architectures") if isinstance(config, dict) else None
    return ", ".join(str(a) for a in names) if names else "no architecture in config.json"


def _read(path: Path) -> dict | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None
