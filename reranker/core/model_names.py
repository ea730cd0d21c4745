"""The models we know by name, and which one is meant when none is named; free of torch, so a process that only
talks to a server (the workbench under ./start.sh) never imports it."""

from __future__ import annotations

import os

DEFAULT_MODEL = "Qwen/Qwen3-Reranker-0.6B"
KNOWN_MODELS = ("Qwen/Qwen3-Reranker-0.6B", "Qwen/Qwen3-Reranker-4B", "Qwen/Qwen3-Reranker-8B")


def resolve_model(model: str | None) -> str:
    return model or os.environ.get("RERANKER_MODEL") or DEFAULT_MODEL
