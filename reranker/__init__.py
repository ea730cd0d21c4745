"""Qwen-Ranker Pro's engine: Qwen3-Reranker scores for (query, document) pairs. No UI, no HTTP.

The front ends live one level down: `reranker.workbench` (what the Streamlit pages share) and
`reranker.sidecar` (the HTTP service); `reranker.testing` holds what tests and benchmarks build on.

The names below are imported when first used, so `from reranker import Query` does not load torch: the
sidecar checks its settings and data folder before paying for the heavy imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reranker.backend import BackendError, RerankBackend, UnsupportedOption, open_backend
    from reranker.engine import Qwen3Reranker
    from reranker.explanations import Span, explain
    from reranker.loading import ModelLoadError
    from reranker.model_names import DEFAULT_MODEL, KNOWN_MODELS
    from reranker.prompt import DEFAULT_INSTRUCTION
    from reranker.ranking import Judgement, Query, RankedDocument, rank_judgements

_HOMES = {"Qwen3Reranker": "engine", "DEFAULT_MODEL": "model_names", "KNOWN_MODELS": "model_names",
          "RerankBackend": "backend", "open_backend": "backend", "BackendError": "backend",
          "UnsupportedOption": "backend",
          "ModelLoadError": "loading", "DEFAULT_INSTRUCTION": "prompt", "Judgement": "ranking", "Query": "ranking",
          "RankedDocument": "ranking", "rank_judgements": "ranking", "explain": "explanations", "Span": "explanations"}

__all__ = ["DEFAULT_INSTRUCTION", "DEFAULT_MODEL", "KNOWN_MODELS", "BackendError", "Judgement", "ModelLoadError",
           "Query", "Qwen3Reranker", "RankedDocument", "RerankBackend", "Span", "UnsupportedOption", "explain",
           "open_backend", "rank_judgements"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'reranker' has no attribute {name!r}")
    return getattr(importlib.import_module(f"reranker.{_HOMES[name]}"), name)
