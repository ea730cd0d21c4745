"""The "Documents (one per line)" box: one document per line, optionally with a relevance label.

A line ending in a tab and one digit (as when two spreadsheet columns, text and label, are pasted)
carries a label. Labels are used only when every line has one, so a pasted spreadsheet row whose last
cell happens to be a digit is not cut by accident; otherwise the lines are kept whole and a warning
says why the labels were not used.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

_LABELLED = re.compile(r"^(?P<text>.*\S)[ ]*\t[ \t]*(?P<label>[0-9])[ \t]*$")


@dataclass(frozen=True)
class ParsedDocuments:
    documents: list[str]
    labels: list[float] | None
    """One per document when every line carried a label, else None."""
    line_numbers: list[int]
    """Each document's line in the pasted text, from 1."""
    duplicate_of: dict[int, int] = field(default_factory=dict)
    """Document index -> index of the first document with the same text."""
    labelled_lines: int = 0
    """Lines that ended in a tab and a digit (all of them when `labels` is set)."""
    invisible_lines: int = 0
    """Lines dropped as blank though not empty: nothing in them shows (zero-width spaces and the like)."""

    @property
    def count(self) -> int:
        return len(self.documents)

    def warnings(self) -> list[str]:
        """What a user should know about their input before scoring it."""
        notes = []
        if self.duplicate_of:
            pairs = ", ".join(f"line {self.line_numbers[i]} repeats line {self.line_numbers[first]}"
                              for i, first in list(self.duplicate_of.items())[:5])
            more = len(self.duplicate_of) - 5
            notes.append(f"{len(self.duplicate_of)} duplicate document{'s' if len(self.duplicate_of) > 1 else ''}: "
                         f"{pairs}{f' and {more} more' if more > 0 else ''}. They get the same score.")
        if self.invisible_lines:
            lines = "line" if self.invisible_lines == 1 else "lines"
            notes.append(f"{self.invisible_lines:,} {lines} with nothing visible in them (only zero-width or other "
                         f"invisible characters) {'was' if self.invisible_lines == 1 else 'were'} left out, as "
                         "blank lines are.")
        if self.labels is None and self.labelled_lines:
            notes.append(f"{self.labelled_lines} of {self.count} lines end in a tab and a relevance label; labels "
                         "are used only when every line has one, so these lines were kept whole.")
        return notes


def document_lines(text: str) -> list[tuple[int, str]]:
    """The one "one document per line" rule: (line number from 1, the line stripped), blank lines dropped; a line
    with no visible character (only spaces, zero-width spaces or other invisible marks) is blank."""
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
    return [(n, line) for n, line in lines if is_visible(line)]


def invisible_lines(text: str) -> int:
    """Lines that look like text to the eye of the pasting program but show nothing (e.g. only U+200B)."""
    return sum(1 for line in text.splitlines() if line.strip() and not is_visible(line))


def is_visible(text: str) -> bool:
    """Whether the text has a character that shows: not a space, a control or a format mark (Unicode Z*, Cc, Cf)."""
    return any(unicodedata.category(c)[0] != "Z" and unicodedata.category(c) not in ("Cc", "Cf") for c in text)


def parse_documents(text: str) -> ParsedDocuments:
    """Split pasted text into documents (see `document_lines`), tabs inside kept, labels read when all have one."""
    lines = document_lines(text)
    matches = [_LABELLED.match(line) for _, line in lines]
    labelled = sum(m is not None for m in matches)
    if lines and labelled == len(lines):
        documents = [m.group("text").strip() for m in matches if m is not None]
        labels: list[float] | None = [float(m.group("label")) for m in matches if m is not None]
    else:
        documents, labels = [line for _, line in lines], None
    first_seen: dict[str, int] = {}
    duplicate_of: dict[int, int] = {}
    for i, doc in enumerate(documents):
        if doc in first_seen:
            duplicate_of[i] = first_seen[doc]
        else:
            first_seen[doc] = i
    return ParsedDocuments(documents, labels, [n for n, _ in lines], duplicate_of, labelled, invisible_lines(text))


def format_documents(documents: Sequence[str], labels: Sequence[float] | None = None) -> str:
    """The text that parses back into these documents (and labels)."""
    if labels is None:
        return "\n".join(documents)
    return "\n".join(f"{doc}\t{label:g}" for doc, label in zip(documents, labels, strict=True))
