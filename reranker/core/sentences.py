"""Where sentences end, the one rule the explanations (a span per sentence) and passages (cut at a sentence end)
share: English and Chinese sentence ends and line breaks; in code, line breaks only."""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"[.!?](?=\s)|[。！？；…]+|\n")
"""A sentence's end: . ! ? before a blank, Chinese 。！？；…, or a line break."""
_CODE_LINE = re.compile(r"^(\s{2,}|\t)|[{};:)]\s*$|^\s*(def|class|return|import|from|if|for|while|function|const|let|"
                        r"var|public|private|#include)\b")


def looks_like_code(text: str) -> bool:
    """Several lines, at least a third of them indented or ending as code does (braces, semicolons, colons)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) >= 2 and sum(bool(_CODE_LINE.search(line)) for line in lines) * 3 >= len(lines)
