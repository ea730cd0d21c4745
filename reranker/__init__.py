"""Qwen-Ranker Pro's engine: Qwen3-Reranker scores for (query, document) pairs. No UI, no HTTP.

The front ends live one level down: `reranker.workbench` (what the Streamlit pages share) and
`reranker.sidecar` (the HTTP service); `reranker.testing` holds what tests and benchmarks build on.
"""

from reranker.engine import Qwen3Reranker
from reranker.loading import DEFAULT_MODEL, KNOWN_MODELS, ModelLoadError
from reranker.prompt import DEFAULT_INSTRUCTION
from reranker.ranking import Judgement, Query, RankedDocument, rank_judgements

__all__ = ["DEFAULT_INSTRUCTION", "DEFAULT_MODEL", "KNOWN_MODELS", "Judgement", "ModelLoadError", "Query",
           "Qwen3Reranker", "RankedDocument", "rank_judgements"]
