"""Whether an instruction is written in the language of the queries it is used with: the check fine-tuning makes, since
a tuned model is served with the instruction it was tuned under. Chinese (Han characters) against anything else, the
two languages the project treats as first-class."""

from __future__ import annotations

import re
from collections.abc import Iterable

from reranker.core.prompt import DEFAULT_INSTRUCTION, resolve_instruction

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LETTER = re.compile(r"[^\W\d_]")


def is_chinese(text: str) -> bool:
    """At least half of the text's letters are Han characters."""
    letters = _LETTER.findall(text)
    return bool(letters) and len(_HAN.findall(text)) * 2 >= len(letters)


def instruction_language_note(instruction: str | None, queries: Iterable[str]) -> str | None:
    """A note, in words, when a custom instruction is in Chinese and most queries are not, or the other way round;
    None when they agree (or with the default instruction, which the model card uses for every language)."""
    if resolve_instruction(instruction) == DEFAULT_INSTRUCTION:
        return None
    queries = [q for q in queries if _LETTER.search(q)]
    if not queries:
        return None
    chinese = sum(is_chinese(q) for q in queries) / len(queries)
    in_chinese = is_chinese(resolve_instruction(instruction))
    other = chinese if not in_chinese else 1 - chinese
    if other <= 0.5:
        return None
    said = "Chinese" if in_chinese else "English (or another language than Chinese)"
    queries_in = "Chinese" if not in_chinese else "another language than Chinese"
    return (f"the instruction is in {said} while {other:.0%} of the queries are in {queries_in}: the model reads "
            "the instruction in every prompt, and the tuned model is served with it. Write it in the queries' "
            "language, or in English (the model card's advice for queries in any language), and run again if that "
            "was not meant")
