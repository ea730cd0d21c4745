"""The Qwen3-Reranker prompt, exactly as the model card builds it. The only place it is spelled out."""

from __future__ import annotations

SYSTEM_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
ASSISTANT_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
YES_TOKEN = "yes"
NO_TOKEN = "no"


def resolve_instruction(instruction: str | None) -> str:
    """None or blank means the model card's default instruction."""
    if instruction is None or not instruction.strip():
        return DEFAULT_INSTRUCTION
    return instruction


def user_turn(query: str, document: str, instruction: str | None = None) -> str:
    return _query_part(query, instruction) + _document_part(document)


def _query_part(query: str, instruction: str | None) -> str:
    return f"{query_lead(instruction)} {query}\n"


def _document_part(document: str) -> str:
    return f"<Document>: {document}"


def query_lead(instruction: str | None = None) -> str:
    """The user turn up to the query: the same for every query under one instruction."""
    return f"<Instruct>: {resolve_instruction(instruction)}\n<Query>:"


def prompt_halves(query: str, document: str, instruction: str | None = None) -> tuple[str, str]:
    """The whole prompt as (query part, document part), which concatenated are exactly the model card's prompt:
    the form a server that joins two texts (vLLM's /score) is sent."""
    return SYSTEM_PREFIX + _query_part(query, instruction), _document_part(document) + ASSISTANT_SUFFIX


PAIR_END = ASSISTANT_SUFFIX
"""The end of the prompt, from `<|im_end|>` to `</think>` and its line breaks: a sequence-classifier export's tokenizer
adds it after text 2 itself (its pair template, as the model card's code adds its suffix tokens), as `classifier_pair`
leaves it out. So a server that cuts an over-long text 2 cuts the document, never the question, and one that strips a
text's trailing whitespace cannot cut the final line breaks."""


def classifier_pair(query: str, document: str, instruction: str | None = None,
                    pair_end: str = PAIR_END) -> tuple[str, str]:
    """The two texts a Qwen3-Reranker exported as a sequence classifier is sent (engine/seq_cls_export.py):
    `prompt_halves`, the second without `pair_end`, which the export's tokenizer adds after it (exports of the
    "v2" form added only the final line breaks: engine/seq_cls_export.PAIR_ENDS). The first half keeps its final line
    break: Qwen's tokenizer reads a query's last punctuation and that break as one token ("?\n"), which no template
    added after it could rebuild; so a server that strips each text (sentence-transformers 3, hence Infinity 0.0.78)
    cannot be sent the card's prompt exactly (docs/VERIFY.md)."""
    query_part, document_part = prompt_halves(query, document, instruction)
    return query_part, document_part.removesuffix(pair_end)
