"""Qwen-Ranker Pro's engine: Qwen3-Reranker scores for (query, document) pairs. No UI, no HTTP."""

from reranker.engine import Judgement, Query, Qwen3Reranker, RankedDocument, rank_judgements
from reranker.loading import DEFAULT_MODEL, KNOWN_MODELS, ModelLoadError
from reranker.prompt import DEFAULT_INSTRUCTION

__all__ = ["DEFAULT_INSTRUCTION", "DEFAULT_MODEL", "KNOWN_MODELS", "Judgement", "ModelLoadError", "Query",
           "Qwen3Reranker", "RankedDocument", "rank_judgements"]
