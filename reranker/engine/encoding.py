"""Turning (instruction, query, document) into the token ids the model reads.

User text is tokenized as plain text: a `<|im_end|>` or `<think>` typed into a document is spelled out
in ordinary tokens, never turned into the control token, so a document cannot close its own turn and
answer for itself. For text without such strings the ids are exactly the model card's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

from reranker.core.prompt import ASSISTANT_SUFFIX, SYSTEM_PREFIX, query_lead, user_turn


@dataclass(frozen=True)
class EncodedPair:
    """One prompt's token ids; `truncated` when the document was cut (to its token cap, or to fit max_length)."""

    input_ids: list[int]
    truncated: bool
    too_long: bool = False
    """The prompt, as asked for, did not fit `max_length` and had to be cut."""


class PromptEncoder:
    """Builds prompts the way the model card does: prefix + user turn (cut from its end) + suffix."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.prefix_ids = tokenizer.encode(SYSTEM_PREFIX, add_special_tokens=False)
        self.suffix_ids = tokenizer.encode(ASSISTANT_SUFFIX, add_special_tokens=False)
        self.user_budget = max_length - len(self.prefix_ids) - len(self.suffix_ids)
        if self.user_budget < 1:
            raise ValueError(
                f"max_length={max_length} leaves no room for the query and document: the prompt's fixed "
                f"part alone takes {len(self.prefix_ids) + len(self.suffix_ids)} tokens"
            )
        self._plain = plain_text_tokenizer(tokenizer)

    def tokenize_text(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, with every special or added token string read as plain text."""
        if not texts:
            return []
        if self._plain is not None:
            return [e.ids for e in self._plain.encode_batch(list(texts), add_special_tokens=False)]
        out = self.tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True)
        return out["input_ids"]

    def encode(self, query: str, documents: Sequence[str], instruction: str | None = None,
               document_tokens: int | None = None, keep_document_end: bool = False) -> list[EncodedPair]:
        """The prompts of a query's documents. `document_tokens` first cuts each document to that many tokens;
        a prompt still over max_length is cut from its end, as the model card does, or, with
        `keep_document_end`, by cutting its document's start instead."""
        documents, cut = list(documents), [False] * len(documents)
        if document_tokens is not None:
            documents, cut = self.cut_documents(documents, document_tokens, keep_document_end)
        turns = self.tokenize_text([user_turn(query, d, instruction) for d in documents])
        too_long = [len(ids) > self.user_budget for ids in turns]
        if keep_document_end and any(too_long):
            over = [i for i, long in enumerate(too_long) if long]
            for i, ids in zip(over, self.tokenize_text([documents[i] for i in over])):
                keep = max(len(ids) - (len(turns[i]) - self.user_budget) - 2, 0)  # 2: the joins may tokenize apart
                [documents[i]], _ = self.cut_documents([documents[i]], keep, keep_end=True)
            for i, ids in zip(over, self.tokenize_text([user_turn(query, documents[i], instruction) for i in over])):
                turns[i] = ids
        return [
            EncodedPair(self.prefix_ids + ids[: self.user_budget] + self.suffix_ids, was_cut or long, long)
            for ids, was_cut, long in zip(turns, cut, too_long)
        ]

    def cut_documents(self, documents: Sequence[str], tokens: int, keep_end: bool = False
                      ) -> tuple[list[str], list[bool]]:
        """Each document cut to its first (or last) `tokens` tokens, at a token boundary of the text; and
        whether it was cut. Counted on the document alone, so in the prompt it may differ by a token."""
        out, cut = list(documents), [False] * len(documents)
        for i, (text, (ids, spans)) in enumerate(zip(documents, self.tokens_and_offsets(documents))):
            if len(ids) <= tokens:
                continue
            cut[i] = True
            if tokens <= 0:
                out[i] = ""
            elif spans is None:
                kept = ids[-tokens:] if keep_end else ids[:tokens]
                out[i] = self.tokenizer.decode(kept)
            else:
                out[i] = text[spans[len(ids) - tokens][0]:] if keep_end else text[:spans[tokens - 1][1]]
        return out, cut

    def tokens_and_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]] | None]]:
        """Each text's plain-text token ids and their character spans (None with a slow tokenizer, which no
        Qwen3-Reranker has), in one pass."""
        if self._plain is None or not texts:
            return [(ids, None) for ids in self.tokenize_text(texts)]
        return [(e.ids, e.offsets) for e in self._plain.encode_batch(list(texts), add_special_tokens=False)]

    def shared_prefix(self, query: str, instruction: str | None = None) -> list[int]:
        """Ids every document's prompt for this query starts with (system + instruction + query).

        The user turn with an empty document ends in a lone space that a real document's first word
        absorbs; callers keep only the part a given prompt really shares (see `common_prefix_length`).
        """
        turn = self.tokenize_text([user_turn(query, "", instruction)])[0][: self.user_budget]
        return self.prefix_ids + turn

    def instruction_prefix(self, instruction: str | None = None) -> list[int]:
        """Ids every prompt under this instruction starts with (system + instruction), whatever the query."""
        return self.prefix_ids + self.tokenize_text([query_lead(instruction)])[0]


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def plain_text_tokenizer(tokenizer: PreTrainedTokenizerBase) -> Tokenizer | None:
    """A copy of a fast tokenizer that knows no added tokens, so control strings stay text."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    spec = json.loads(backend.to_str())
    spec["added_tokens"] = []
    spec["post_processor"] = None
    spec["truncation"] = None
    spec["padding"] = None
    return Tokenizer.from_str(json.dumps(spec))
