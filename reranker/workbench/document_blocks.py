"""The documents box read one document per blank-line-separated block, so a document of several lines or paragraphs
(pasted whole, for the long-documents setting) stays one document; the one-per-line reading is formats/documents.

A block's lines keep their line breaks; a label (a tab and a digit) ends a block's last line, and, as per line, labels
are used only when every block has one. `looks_like_blocks` tells the page when a text looks written for this
reading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from reranker.formats.documents import ParsedDocuments, format_documents, is_visible, parse_documents

_JOINED = "\ue000"
"""A private-use character standing for a line break inside a block while the one-per-line rules read it."""
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")


def blocks_of(text: str) -> list[tuple[int, str]]:
    """(the block's first line from 1, its text: lines stripped, blank ones dropped) per block of visible text."""
    blocks, start, current = [], 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        if is_visible(line):
            start = start or number
            current.append(line.strip())
        elif not line.strip() or not current:  # a blank line ends a block; an invisible one alone is dropped
            if current:
                blocks.append((start, "\n".join(current)))
            start, current = 0, []
    if current:
        blocks.append((start, "\n".join(current)))
    return blocks


def parse_blocks(text: str) -> ParsedDocuments:
    """Split pasted text into documents, one per block of lines between blank lines (labels, duplicates and their
    warnings as one per line, each block counted by its first line)."""
    blocks = blocks_of(text)
    parsed = parse_documents("\n".join(block.replace("\n", _JOINED) for _, block in blocks))
    return replace(parsed, documents=[d.replace(_JOINED, "\n") for d in parsed.documents],
                   line_numbers=[first for first, _ in blocks], invisible_lines=0)


def format_blocks(documents: Sequence[str], labels: Sequence[float] | None = None) -> str:
    """The text that parse_blocks reads back into these documents (and labels)."""
    lines = format_documents([d.replace("\n", _JOINED) for d in documents], labels).split("\n")
    return "\n\n".join(line.replace(_JOINED, "\n") for line in lines) if documents else ""


def parsed_as(text: str, blocks: bool) -> ParsedDocuments:
    return parse_blocks(text) if blocks else parse_documents(text)


def formatted_as(documents: Sequence[str], labels: Sequence[float] | None, blocks: bool) -> str:
    return format_blocks(documents, labels) if blocks else format_documents(documents, labels)


def looks_like_blocks(text: str) -> bool:
    """Whether the text reads as paragraphs of several lines apart by blank lines: some block has two lines or more
    and the text has a blank line between lines (read one per line, its paragraphs would be cut up)."""
    return bool(_BLANK_LINES.search(text.strip())) and any("\n" in block for _, block in blocks_of(text))
