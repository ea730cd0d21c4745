"""Tables of (query, document) pairs in, spreadsheet-safe tables out: the CSV batch page, the sidecar's jobs and the
batch command read them with one reader (`delimited_rows`; JSON Lines with `json_records`)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import pandas as pd

from reranker.core.failures import BadRequest

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
ENCODINGS = ("utf-8-sig", "gb18030")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class TableError(BadRequest, ValueError):
    """An uploaded table cannot be used; the message is meant for the person who uploaded it."""


class UnreadableRow(TableError):
    """One row of a CSV or TSV cannot be read (too many or too few fields, a stray quote): the rest of the file may
    be read without it (`read_table_skipping`)."""


@dataclass(frozen=True)
class PairRow:
    row: int
    """0-based position among the table's data rows."""
    query: str
    document: str
    label: float | None
    instruction: str | None


def read_table(data: bytes, filename: str = "", max_bytes: int = MAX_UPLOAD_BYTES) -> pd.DataFrame:
    """A CSV or TSV upload as a frame of strings; UTF-8 (with or without BOM) or GBK/GB18030. A bad row refuses the
    whole file (see `delimited_rows`)."""
    return read_table_skipping(data, filename, max_bytes, skip_bad_rows=False)[0]


def read_table_skipping(data: bytes, filename: str = "", max_bytes: int = MAX_UPLOAD_BYTES,
                        skip_bad_rows: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """read_table, and with `skip_bad_rows` the rows that cannot be read left out instead of refusing the file: the
    frame and what was left out, by line (what a person chose after seeing the refusal)."""
    if len(data) > max_bytes:
        raise TableError(f"the file is {len(data) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    if not data.strip():
        raise TableError("the file is empty")
    if b"\x00" in data[:4096]:
        raise TableError("this is not a CSV or TSV file (it looks binary: an Excel workbook? Save it as CSV)")
    text = decode_text(data)
    if is_json(filename):
        records, _, problems = json_records(text)
        if problems and not skip_bad_rows:
            raise UnreadableRow(problems[0])
        if not records:
            raise TableError("the file holds no JSON object" + (" that can be read" if problems else ""))
        frame = pd.DataFrame.from_records([{k: _cell_text(v) for k, v in r.items()} for r in records])
        return frame.fillna("").astype(str), problems
    header, rows, _, problems = delimited_rows(text, delimiter_of(text, filename), skip_bad_rows)
    if not rows:
        raise TableError("the file has a header but no rows" + (" that can be read" if problems else ""))
    return pd.DataFrame(rows, columns=header, dtype=str), problems


JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


def is_json(filename: str) -> bool:
    return filename.lower().endswith(JSON_SUFFIXES)


def json_records(text: str) -> tuple[list[dict[str, object]], list[str], list[str]]:
    """The objects of JSON Lines (one a line), or of a JSON array of objects; with each one's "line N", and one
    problem per line (or item) that is not a JSON object, the rest still read. Keys are stripped strings."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as e:
            raise TableError(f"this is not valid JSON ({e}); give an array of objects, or one object a line") from None
        numbered = [(f"item {n}", item) for n, item in enumerate(items, start=1)]
    else:
        numbered = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    numbered.append((f"line {n}", json.loads(line)))
                except ValueError:
                    numbered.append((f"line {n}", _NOT_JSON))
    records, where, problems = [], [], []
    for place, item in numbered:
        if item is _NOT_JSON:
            problems.append(f"{place}: not valid JSON; the row could not be read")
        elif not isinstance(item, dict):
            problems.append(f"{place}: not a JSON object; the row could not be read")
        else:
            records.append({str(k).strip(): v for k, v in item.items()})
            where.append(place)
    return records, where, problems


_NOT_JSON = object()


def _cell_text(value: object) -> str:
    """A JSON value as a table cell: text as it is, null as empty, numbers and the rest as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def delimited_rows(text: str, delimiter: str, skip_bad_rows: bool) -> tuple[list[str], list[list[str]], list[int],
                                                                           list[str]]:
    """(header, rows, each row's line in the text, problems) of CSV or TSV text; blank lines skipped, header names
    stripped.

    A row of the wrong length, or quotes that CSV cannot read, is a problem told by its line. What happens then is
    the caller's policy, as its user needs: an upload in the workbench or a job (`skip_bad_rows=False`) is refused
    whole with the line to fix, since the person is there to fix it, and a ranking that silently lacks some rows
    would mislead; the batch command (`True`), on files of millions of rows, leaves the row out and goes on, and
    reports every row left out with its line so they can be scored again."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    text_lines = text.splitlines(keepends=True)
    header: list[str] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[str] = []
    first = 0  # the reader starts after this many lines: past a row that could not be read, when skipping
    while True:
        reader = csv.reader(io.StringIO("".join(text_lines[first:])), delimiter=delimiter, strict=True)
        started = first + 1  # the line the row being read starts on (a quoted cell may span lines)
        try:
            for row in reader:
                row_line, started = started, first + reader.line_num + 1
                if not row:
                    continue
                if not header:
                    header = _header(row)
                elif len(row) == len(header):
                    rows.append(row)
                    lines.append(row_line)
                else:
                    problems.append(_wrong_length(row, header, row_line, first + reader.line_num, kind,
                                                  skip_bad_rows))
            return header, rows, lines, problems
        except csv.Error as e:
            where = f"line {started}" if started >= first + reader.line_num else \
                f"line {started} (a quote opened there is never closed)"
            if not skip_bad_rows:
                raise UnreadableRow(f"this file could not be read as {kind}: {where}: {e} (a cell with a quote in it "
                                    'is written in double quotes, its quote doubled: "say ""yes"""); fix that line '
                                    "and upload the file again") from None
            problems.append(f"{where}: {e}; the row was left out")
            first = started  # read on from the line after the one the bad row started on


def _header(row: list[str]) -> list[str]:
    header = [c.strip() for c in row]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise TableError(f"the header names {', '.join(map(repr, repeated))} more than once; give each column its "
                         "own name")
    return header


def _wrong_length(row: list[str], header: list[str], started: int, ended: int, kind: str, skip_bad_rows: bool) -> str:
    """The problem of a row with more or fewer fields than the header (raised, unless skipping)."""
    where = f"line {started}" if started == ended else f"lines {started}–{ended} (a quote opened on line {started})"
    if not skip_bad_rows:
        raise UnreadableRow(f"{where} has {len(row)} field{'s' if len(row) != 1 else ''} but the header has "
                            f"{len(header)}; fix that row (a cell with a {'tab' if kind == 'TSV' else 'comma'} in it "
                            "needs double quotes around it) and upload the file again")
    return f"{where}: {len(row)} field{'s' if len(row) != 1 else ''} where the header has {len(header)}; the row " \
           "could not be read"


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
