"""The rerank dialects RAG tools speak, one module each: its request and response bodies and the translation to
and from the service. `rerank_v1` (Jina, Cohere v1, vLLM), `cohere_v2`, `tei` (text-embeddings-inference),
`vllm_score`. What they share is here: bodies that take what clients really send, and the instruction field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reranker.sidecar.errors import InvalidInput


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
            raise InvalidInput("the request gives both 'instruction' and 'instruct', with different texts; "
                               "send one of them")
        return self.instruction if self.instruction is not None else self.instruct


def document_token_cap(truncate_prompt_tokens: int | None) -> int | None:
    """vLLM's `truncate_prompt_tokens` as a cut of each document: absent or -1 (the model's limit) cuts none."""
    return None if truncate_prompt_tokens in (None, -1) else truncate_prompt_tokens


def top_n_or_all(top_n: int | None) -> int | None:
    """top_n as the dialects mean it: absent or 0 (vLLM's "all") returns every document."""
    return top_n or None
