"""A sentence-transformers embedding model for a dense first stage (analysis/dense_retrieval.py): Qwen3-Embedding
with its query prompt, bge-small-zh-v1.5, any other. Its prompts are its own (config_sentence_transformers.json),
applied by sentence-transformers' encode_query and encode_document. sentence-transformers is imported when a model
is opened (the `cross-encoder` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reranker.core.failures import BadRequest, ModelLoadError
from reranker.engine.loading import resolve_device
from reranker.engine.model_files import CROSS_ENCODER, EMBEDDING, architectures_text, model_json, model_kind

_BATCH = 32


class EmbeddingModel:
    """`model` (a folder or hub id) opened with SentenceTransformer; BadRequest when its files say it is not an
    embedding model, ModelLoadError when it cannot be loaded."""

    def __init__(self, model: str, device: str | None = None) -> None:
        self.name = model
        self.encoder = _open(model, device)
        self.dimensions = int((getattr(self.encoder, "get_embedding_dimension", None)
                               or self.encoder.get_sentence_embedding_dimension)() or 0)
        self.document_prompt = (getattr(self.encoder, "prompts", None) or {}).get("document", "")

    @property
    def identity(self) -> list:
        """What its embeddings are filed under: a folder's path and its weights' sizes and times (rebuilt weights are
        new embeddings); a hub id and the snapshot its config.json is cached in (a new revision is new ones)."""
        folder = Path(self.name).expanduser()
        if folder.is_dir():
            weights = sorted(p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin"))
            return [str(folder.resolve()), [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in weights]]
        from huggingface_hub import try_to_load_from_cache

        try:
            found = try_to_load_from_cache(self.name, "config.json")
        except ValueError:
            found = None
        return [self.name, found if isinstance(found, str) else None]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 rows, with the model's document prompt (if any)."""
        return self.encoder.encode_document(list(texts), batch_size=_BATCH, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 rows, with the model's query prompt (Qwen3-Embedding's instruction) when it has one."""
        return self.encoder.encode_query(list(texts), batch_size=_BATCH, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False).astype(np.float32)


def _open(model: str, device: str | None) -> Any:
    kind = model_kind(model)
    if kind != EMBEDDING and (model_json(model, "config.json") is not None or Path(model).is_dir()):
        hint = " (a cross-encoder: give it to --model to rerank with it)" if kind == CROSS_ENCODER else ""
        raise BadRequest(f"{model} is not an embedding model: its files name {architectures_text(model)}{hint}. "
                         "Give a sentence-transformers embedding model, e.g. dense:Qwen/Qwen3-Embedding-0.6B or "
                         "dense:BAAI/bge-small-zh-v1.5")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ModelLoadError("a dense first stage embeds with sentence-transformers, not installed here: pip "
                             "install 'qwen-ranker-pro[cross-encoder]' (from a clone: pip install '.[cross-encoder]')"
                             ) from None
    where = Path(model).expanduser()
    try:
        return SentenceTransformer(str(where) if where.is_dir() else model, device=str(resolve_device(device)))
    except Exception as e:  # noqa: BLE001 - every failure becomes one explained error
        said = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ModelLoadError(f"Could not load the embedding model {model!r} with sentence-transformers: "
                             f"{type(e).__name__}{': ' + said if said else ''}. Fix: give a folder of a "
                             "sentence-transformers model, or a hub id in the local cache (huggingface-cli download "
                             "MODEL)") from e
