"""Instruction presets and the sample sets (assets/samples/*.json) the workbench offers one click away."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reranker.core.prompt import DEFAULT_INSTRUCTION
from reranker.workbench import ASSETS

INSTRUCTION_PRESETS: dict[str, str] = {
    "General web search": DEFAULT_INSTRUCTION,
    "Question answering": "Given a question, retrieve passages that answer the question",
    "Code search": "Given a code search query, retrieve code snippets or documentation that implement what it asks",
    "Legal clause": "Given a legal question, retrieve the contract clauses that govern the situation it describes",
    "Customer support": "Given a customer's support question, retrieve help articles or replies that resolve it",
}
CUSTOM = "Custom"
"""The choice next to the presets that lets the user type an instruction."""

SAMPLES_DIR = ASSETS / "samples"


@dataclass(frozen=True)
class SampleSet:
    name: str
    preset: str
    query: str
    documents: list[str]
    labels: list[float]


def load_sample_sets(folder: Path = SAMPLES_DIR) -> list[SampleSet]:
    """Every sample set in `folder`, English first; an empty list when the folder is missing."""
    samples = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        samples.append(SampleSet(name=data["name"], preset=data.get("preset", "General web search"),
                                 query=data["query"], documents=[d for d, _ in data["documents"]],
                                 labels=[float(label) for _, label in data["documents"]]))
    return samples
