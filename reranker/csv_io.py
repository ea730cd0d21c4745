"""Uploaded tables in, spreadsheet-safe tables out: the CSV batch page and the sidecar's jobs share these."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pandas as pd

from reranker.ranking import Query

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
ENCODINGS = ("utf-8-sig", "gb18030")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_COLUMN_HINTS = {
    "query": ("query", "question", "q", "查询", "问题"),
    "document": ("document", "doc", "passage", "text", "content", "candidate", "文档", "段落", "内容"),
    "label": ("label", "relevance", "rel", "grade", "gold", "标签", "相关性"),
    "instruction": ("instruction", "instruct", "task", "指令"),
}


class TableError(ValueError):
    """An uploaded table cannot be used; the message is meant for the person who uploaded it."""


@dataclass(frozen=True)
class PairRow:
    row: int
    """0-based position among the table's data rows."""
    query: str
    document: str
    label: float | None
    instruction: str | None


def read_table(data: bytes, filename: str = "", max_bytes: int = MAX_UPLOAD_BYTES) -> pd.DataFrame:
    """A CSV or TSV upload as a frame of strings; UTF-8 (with or without BOM) or GBK/GB18030."""
    if len(data) > max_bytes:
        raise TableError(f"the file is {len(data) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    if not data.strip():
        raise TableError("the file is empty")
    if b"\x00" in data[:4096]:
        raise TableError("this is not a CSV or TSV file (it looks binary: an Excel workbook? Save it as CSV)")
    text = decode_text(data)
    delimiter = delimiter_of(text, filename)
    _check_row_lengths(text, delimiter)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                            skip_blank_lines=True, engine="python")
    except (pd.errors.ParserError, csv.Error, ValueError) as e:
        raise TableError(f"this file could not be read as {'TSV' if delimiter == chr(9) else 'CSV'}: {e}") from e
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise TableError("the file has a header but no rows")
    return frame


def guess_columns(frame: pd.DataFrame) -> dict[str, str | None]:
    """Best guess of which column plays which part, by name (English or Chinese)."""
    lowered = {c.lower(): c for c in frame.columns}
    return {role: next((lowered[h] for h in hints if h in lowered), None) for role, hints in _COLUMN_HINTS.items()}


def pairs_from_table(frame: pd.DataFrame, query: str, document: str, label: str | None = None,
                     instruction: str | None = None) -> list[PairRow]:
    for role, column in (("query", query), ("document", document), ("label", label), ("instruction", instruction)):
        if column is not None and column not in frame.columns:
            raise TableError(f"no column {column!r} for the {role}; the file has: {', '.join(frame.columns)}")
    rows: list[PairRow] = []
    for n, record in enumerate(frame.to_dict("records")):
        rows.append(PairRow(
            row=n,
            query=record[query],
            document=record[document],
            label=_label(record[label], n, label) if label else None,
            instruction=(record[instruction] or None) if instruction else None,
        ))
    return rows


def group_pairs(rows: list[PairRow]) -> list[tuple[Query, list[int]]]:
    """One engine Query per (query, instruction), in first-seen order, with the table rows it covers."""
    groups: dict[tuple[str, str | None], list[PairRow]] = {}
    for r in rows:
        groups.setdefault((r.query, r.instruction), []).append(r)
    return [(Query(q, [r.document for r in members], instr), [r.row for r in members])
            for (q, instr), members in groups.items()]


def neutralise_cell(value: object) -> object:
    """Text a spreadsheet would run as a formula gets a leading apostrophe; other values pass."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def safe_csv_bytes(frame: pd.DataFrame, delimiter: str = ",") -> bytes:
    """CSV (or TSV) in UTF-8 with a BOM (Excel then reads Chinese correctly), formula cells neutralised."""
    safe = frame.copy()
    safe.columns = [neutralise_cell(str(c)) for c in safe.columns]
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = pd.Series([neutralise_cell(v) for v in safe[column]], index=safe.index, dtype=object)
    return safe.to_csv(index=False, sep=delimiter).encode("utf-8-sig")


def _check_row_lengths(text: str, delimiter: str) -> None:
    """Every row as long as the header (a short row would read as missing cells, a long one (all rows long)
    would silently turn the first column into the row names), and quotes as CSV wants them, told by line."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = next((row for row in reader if row), [])
        for row in reader:
            if row and len(row) != len(header):
                raise TableError(f"line {reader.line_num} has {len(row)} fields but the header has {len(header)}; "
                                 f"fix that row (a cell with a {'tab' if kind == 'TSV' else 'comma'} in it needs "
                                 "double quotes around it) and upload the file again")
    except csv.Error as e:
        raise TableError(f"this file could not be read as {kind}: line {reader.line_num}: {e} (a cell with a "
                         'quote in it is written in double quotes, its quote doubled: "say ""yes"""); fix that line '
                         "and upload the file again") from None


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GBK/GB18030."""
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError("the file is neither UTF-8 nor GBK text; save it as CSV UTF-8")


def delimiter_of(text: str, filename: str) -> str:
    """Tab for .tsv/.tab files, or when the header holds more tabs than commas; else comma."""
    if filename.lower().endswith((".tsv", ".tab")):
        return "\t"
    header = text.split("\n", 1)[0]
    return "\t" if header.count("\t") > header.count(",") else ","


def _label(value: str, row: int, column: str) -> float | None:
    if value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise TableError(f"row {row + 1}: the {column!r} column holds {value!r}, which is not a number") from None
