"""The rerank dialects RAG tools speak, one module each: its request and response bodies and the translation to
and from the service. `rerank_v1` (Jina, Cohere v1, vLLM), `cohere_v2`, `tei` (text-embeddings-inference),
`vllm_score`. What they share is here: bodies that take what clients really send, and the instruction field.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reranker.core.failures import BadRequest, InvalidField
from reranker.sidecar.limits import check_unicode

CHUNK_TOKENS = 512
"""The size of a chunk when a client asks for chunks by number only (Cohere v1's max_chunks_per_doc)."""
MODEL_FIELD = ("One of the sidecar's extra models (RERANKER_EXTRA_MODELS) to score with; any other name is accepted "
               "for client compatibility and the sidecar's own model answers.")


class LenientBody(BaseModel):
    """A request body as clients really send it: unknown fields are ignored (as the Cohere and Jina APIs do), and
    an explicit null means the same as leaving the field out (the Cohere SDK sends nulls)."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class InstructedBody(LenientBody):
    """A body that may carry the task instruction, by either name clients use for it."""

    instruction: str | None = Field(None, description="Task instruction; blank means the model's default.")
    instruct: str | None = Field(None, description="The same as `instruction`: the name vLLM's Qwen3-Reranker "
                                                   "template and sglang use.")

    def task_instruction(self) -> str | None:
        """The instruction asked for; both names with different texts is refused rather than one silently lost."""
        if self.instruction is not None and self.instruct is not None and self.instruction != self.instruct:
            raise BadRequest("the request gives both 'instruction' and 'instruct', with different texts; "
                               "send one of them")
        return self.instruction if self.instruction is not None else self.instruct


def document_text(document: str | dict[str, Any], index: int, rank_fields: list[str] | None = None) -> str:
    """The text to rank: a string as it is; an object's `text`, or its `rank_fields` as `field: value` lines.

    An object comes back whole in the answer, so every text in it must be one JSON can carry."""
    if isinstance(document, str):
        return document
    _check_readable(document, f"documents[{index}]")
    if rank_fields:
        missing = [f for f in rank_fields if f not in document]
        if missing:
            raise BadRequest(f"documents[{index}] has no field {missing[0]!r}, which rank_fields names")
        return "\n".join(f"{f}: {_as_text(document[f])}" for f in rank_fields)
    if not isinstance(document.get("text"), str):
        raise InvalidField(["documents", index, "text"], "a document given as an object needs a string field "
                           "'text' (or name the fields to rank on with rank_fields)", kind="missing")
    return document["text"]


def as_object(document: str | dict[str, Any]) -> dict[str, Any]:
    """A document as the answers give it back: `{"text": ...}` for a string, an object as it was sent."""
    return {"text": document} if isinstance(document, str) else document


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _check_readable(value: Any, name: str) -> None:
    """Every key and string in an object a client sent is valid Unicode (a lone surrogate is not)."""
    if isinstance(value, str):
        check_unicode(name, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_readable(key, name)
            _check_readable(item, f"{name}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _check_readable(item, f"{name}[{n}]")


def document_token_cap(truncate_prompt_tokens: int | None) -> int | None:
    """vLLM's `truncate_prompt_tokens` as a cut of each document: absent or -1 (the model's limit) cuts none."""
    if truncate_prompt_tokens == 0:
        raise BadRequest("truncate_prompt_tokens is 0, which would leave no document to score; send a number of "
                           "tokens, or -1 for the model's limit")
    return None if truncate_prompt_tokens in (None, -1) else truncate_prompt_tokens


def top_n_or_all(top_n: int | None) -> int | None:
    """top_n as the dialects mean it: absent or 0 (vLLM's "all") returns every document."""
    return top_n or None
