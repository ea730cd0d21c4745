"""Qwen-Ranker Pro: Qwen3-Reranker scores for (query, document) pairs, and the front ends built on them.

The package is in layers, each importing only from the ones below it (docs/ARCHITECTURE.md):
- `core`: the interface every front end scores through (`RerankBackend`), its plain data (`Query`, `Judgement`,
  `RankedDocument`), the prompt, model names; no torch, no HTTP;
- `formats`: documents, tables, pair files and exports in and out;
- `engine` (the Qwen3 model in this process, torch), `remote` (the model on a server), `analysis` (ranking
  metrics, explanations);
- `backends`: `open_backend`, from a model name or a server address to a backend;
- the front ends: `cli`, `sidecar` (the HTTP service), `workbench` (what the Streamlit pages share);
- `testing`, for tests and benchmarks only.

The names below are imported when first used, so `from reranker import Query` does not load torch: the sidecar
checks its settings and data folder before paying for the heavy imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reranker.analysis.explanations import Span, explain
    from reranker.backends import open_backend
    from reranker.core.backend import Capabilities, RerankBackend
    from reranker.core.failures import BackendError, ModelLoadError, RerankerError, UnsupportedOption
    from reranker.core.model_names import DEFAULT_MODEL, KNOWN_MODELS
    from reranker.core.prompt import DEFAULT_INSTRUCTION
    from reranker.core.ranking import Judgement, Query, RankedDocument, rank_judgements
    from reranker.engine.qwen3_reranker import Qwen3Reranker

_HOMES = {"Qwen3Reranker": "engine.qwen3_reranker", "DEFAULT_MODEL": "core.model_names",
          "KNOWN_MODELS": "core.model_names", "RerankBackend": "core.backend", "Capabilities": "core.backend",
          "BackendError": "core.failures", "RerankerError": "core.failures", "UnsupportedOption": "core.failures",
          "ModelLoadError": "core.failures",
          "open_backend": "backends", "DEFAULT_INSTRUCTION": "core.prompt", "Judgement": "core.ranking",
          "Query": "core.ranking", "RankedDocument": "core.ranking", "rank_judgements": "core.ranking",
          "explain": "analysis.explanations", "Span": "analysis.explanations"}

__all__ = ["DEFAULT_INSTRUCTION", "DEFAULT_MODEL", "KNOWN_MODELS", "BackendError", "Capabilities", "Judgement",
           "ModelLoadError", "Query", "Qwen3Reranker", "RankedDocument", "RerankBackend", "RerankerError", "Span",
           "UnsupportedOption", "explain", "open_backend", "rank_judgements"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'reranker' has no attribute {name!r}")
    return getattr(importlib.import_module(f"reranker.{_HOMES[name]}"), name)
