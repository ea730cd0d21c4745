"""The parts a table's columns play (query, document, label, instruction): guessed from their names, in English or
Chinese, and named in a table job's form. No pandas here, so a client of a sidecar's jobs needs none."""

from __future__ import annotations

from collections.abc import Iterable

COLUMN_ROLES = ("query", "document", "label", "instruction")
COLUMN_FIELDS = {role: f"{role}_column" for role in COLUMN_ROLES}
"""The form field of a table job (POST /api/jobs) that names the column playing each role."""
_HINTS = {
    "query": ("query", "question", "q", "查询", "问题"),
    "document": ("document", "doc", "passage", "text", "content", "candidate", "文档", "段落", "内容"),
    "label": ("label", "relevance", "rel", "grade", "gold", "标签", "相关性"),
    "instruction": ("instruction", "instruct", "task", "指令"),
}


def guess_columns(names: Iterable[str]) -> dict[str, str | None]:
    """Best guess of which column plays which part, by name (a table's header, or a frame: its column names)."""
    lowered = {str(c).lower(): str(c) for c in names}
    return {role: next((lowered[h] for h in hints if h in lowered), None) for role, hints in _HINTS.items()}
