"""Files of (query, document) pairs in the long form, read and written by the batch command: CSV, TSV, JSONL or
Parquet, chosen by the file's suffix.

Reading never stops at a bad row: it is left out and reported with its line (CSV, TSV, JSONL) or row (Parquet)
number, so the person can fix it and score those rows again (why this differs from an upload in the workbench:
`tables.delimited_rows`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reranker.formats.columns import guess_columns
from reranker.formats.tables import (
    TableError,
    decode_text,
    delimited_rows,
    delimiter_of,
    json_records,
    safe_csv_bytes,
)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
ROW = "_row"
"""The column holding each kept row's 0-based position among the rows read."""
_WHERE = "_where"
"""While reading: where each row sits in the file ("line 7", "row 3"), for the report of bad rows."""


@dataclass(frozen=True)
class PairTable:
    rows: pd.DataFrame
    """The usable rows, as read (strings, but a label column of numbers), with ROW added."""
    columns: dict[str, str | None]
    """Which column is the query, the document, the label and the instruction (None: there is none)."""
    problems: list[str]
    """One line per row left out: where it is and why."""


def file_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise TableError(f"{path}: unknown file type {suffix or '(none)'!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def read_pairs(path: str | Path) -> PairTable:
    """The rows of a pair file with their column roles (guessed from the header, English or Chinese)."""
    frame, problems = _read_frame(path)
    columns = _column_roles(path, frame, problems)
    keep, labels = [], []
    for n, record in enumerate(frame.to_dict("records")):
        label, problem = _row_label(record, columns)
        if problem is None:
            keep.append(n)
            labels.append(label)
        else:
            problems.append(f"{record[_WHERE]}: {problem}")
    rows = frame.iloc[keep].drop(columns=[_WHERE]).reset_index(drop=True)
    rows[ROW] = keep
    if columns["label"]:
        rows[columns["label"]] = labels
    problems.sort(key=lambda p: int(p.split(":", 1)[0].split()[-1]))  # in file order
    return PairTable(rows, columns, problems)


def _read_frame(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """The file's rows as read (with _WHERE), and the rows that could not be read."""
    kind = file_format(path)
    try:
        if kind == "parquet":
            return _read_parquet(path)
        if kind == "jsonl":
            return _read_jsonl(Path(path).read_bytes())
        return _read_delimited(Path(path).read_bytes(), str(path))
    except TableError as e:
        raise TableError(f"{path}: {e}") from None
    except (OSError, ValueError) as e:
        raise TableError(f"cannot read {path}: {e}") from None


def _column_roles(path: str | Path, frame: pd.DataFrame, problems: list[str]) -> dict[str, str | None]:
    """Which column is the query, the document, the label and the instruction; TableError when the file has no rows,
    a header naming a column twice, or no query or document column."""
    if frame.empty and not problems:
        raise TableError(f"{path} holds no rows")
    repeated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if repeated:
        raise TableError(f"{path}: the header names {', '.join(map(repr, repeated))} more than once; give each "
                         "column its own name")
    if frame.empty:
        raise TableError(f"{path}: no row could be read: " + "; ".join(problems[:5]))
    columns = guess_columns(frame.drop(columns=[_WHERE]))
    for role in ("query", "document"):
        if columns[role] is None:
            raise TableError(f"{path}: no column looks like the {role} (name it query/document, or 查询/文档); "
                             f"the file has: {', '.join(c for c in frame.columns if c != _WHERE) or 'no columns'}")
    return columns


def _row_label(record: dict, columns: dict[str, str | None]) -> tuple[float | None, str | None]:
    """A row's label (None: unlabelled), or why the row cannot be scored."""
    query, document = record[columns["query"]], record[columns["document"]]
    if not isinstance(query, str) or not query.strip() or not isinstance(document, str) or not document.strip():
        return None, "the query or the document is empty or not text"
    label = record[columns["label"]] if columns["label"] else None
    if label is None or str(label).strip() in ("", "nan", "None"):
        return None, None
    try:
        return float(label), None
    except (TypeError, ValueError):
        return None, f"the label {label!r} is not a number"


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Written whole to a temporary file beside `path`, then moved there: `path` never holds half a table.
    CSV and TSV neutralise formula-like cells, as every CSV export does; JSONL and Parquet keep text exactly."""
    kind = file_format(path)
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    if kind in ("csv", "tsv"):
        partial.write_bytes(safe_csv_bytes(frame, "\t" if kind == "tsv" else ","))
    elif kind == "jsonl":
        partial.write_text(frame.to_json(orient="records", lines=True, force_ascii=False), encoding="utf-8")
    else:
        frame.to_parquet(partial, index=False)
    os.replace(partial, target)


def _read_parquet(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    frame = pd.read_parquet(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[_WHERE] = [f"row {n}" for n in range(1, len(frame) + 1)]
    return frame, []


def _read_delimited(data: bytes, name: str) -> tuple[pd.DataFrame, list[str]]:
    text = decode_text(data)
    header, rows, lines, problems = delimited_rows(text, delimiter_of(text, name), skip_bad_rows=True)
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    frame[_WHERE] = [f"line {n}" for n in lines]
    return frame, problems


def _read_jsonl(data: bytes) -> tuple[pd.DataFrame, list[str]]:
    records, lines, problems = json_records(decode_text(data))
    frame = pd.DataFrame.from_records(records)
    frame[_WHERE] = lines
    return frame, problems
