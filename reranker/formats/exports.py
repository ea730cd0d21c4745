"""Every ranked table written out, in one schema: the workbench's downloads (Rerank, Compare, CSV batches, Jobs),
the sidecar's job CSV, the CLI's JSON and CSV and the batch command's output.

A row is one (query, document) pair; its columns are EXPORT_COLUMNS in that order, `label` only where there is
one and the best passage's (`passage_start`, `passage_end`, `passage`) only where documents were read as passages.
CSV and JSON carry the same rows: JSON is a list of objects with those keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence

import pandas as pd

from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import Passage, RankedDocument
from reranker.formats.tables import safe_csv_bytes

EXPORT_COLUMNS = ("query", "document", "instruction", "model", "rank", "index", "score", "logit", "tokens",
                  "truncated", "label")
"""`index`: the pair's 0-based position in the input (the document's line among the documents, or the row of an
uploaded table); `rank`: 1 for the best within its query; `instruction`: the one the model read (the default
spelled out); `tokens` and `truncated` are empty when the backend does not report them; `passage_start`,
`passage_end` (character offsets) and `passage` (its text): the best passage, whose score is the document's."""
PASSAGE_COLUMNS = ("passage_start", "passage_end", "passage")
"""After EXPORT_COLUMNS where documents were read as passages."""
_COLUMNS = (*EXPORT_COLUMNS, *PASSAGE_COLUMNS)
OPTIONAL_COLUMNS = ("label", *PASSAGE_COLUMNS)
"""Left out of a table (and JSON's keys) when no row has a value."""

Record = dict[str, object]


def export_record(doc: RankedDocument, query: str, instruction: str | None, model: str,
                  label: float | None = None, index: int | None = None) -> Record:
    """One exported row; `index` replaces the document's position when the input was something else (a table)."""
    record: Record = {"query": query, "document": doc.document, "instruction": resolve_instruction(instruction),
                      "model": model, **doc.record()}
    if index is not None:
        record["index"] = index
    record["label"] = label_value(label)
    columns = _COLUMNS if record["passage_start"] is not None else EXPORT_COLUMNS
    return {column: record[column] for column in columns}


def export_records(ranked: Sequence[RankedDocument], query: str, instruction: str | None, model: str,
                   labels: Sequence[float | None] | None = None) -> list[Record]:
    """A ranking, best first, as exported rows; labels (in input order) where there are any."""
    return [export_record(d, query, instruction, model, labels[d.index] if labels is not None else None)
            for d in ranked]


def records_of_job(results: dict, model: str) -> list[Record]:
    """A sidecar job's results (its JSON answer: each query with its items best first) as exported rows; a table
    job's `index` is the item's row in the upload."""
    return [export_record(RankedDocument(item["index"], item["document"], item["score"], item["logit"], item["rank"],
                                         item.get("tokens"), item.get("truncated"), _best_passage(item)),
                          q["query"], q.get("instruction"), model, item.get("label"), index=item.get("row"))
            for q in results["queries"] for item in q["results"]]


def _best_passage(item: dict) -> tuple[Passage, ...] | None:
    if item.get("passage_start") is None:
        return None
    return (Passage(item["passage_start"], item["passage_end"], item["score"], item["logit"]),)


def export_frame(records: Iterable[Record]) -> pd.DataFrame:
    """The rows as a table in EXPORT_COLUMNS order, then any other keys the records carry (an upload's own columns,
    such as its document ids: `with_input_columns`); without the OPTIONAL_COLUMNS no row has."""
    rows = [_normalised(r) for r in records]
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in _COLUMNS))
    frame = pd.DataFrame(rows, columns=[*_COLUMNS, *extra])
    for column in ("tokens", "truncated", "label", "passage_start", "passage_end"):  # whole numbers, flags stay so
        frame[column] = pd.Series([r[column] for r in rows], index=frame.index, dtype=object)
    return frame.drop(columns=[c for c in OPTIONAL_COLUMNS if frame[c].isna().all()])


def with_input_columns(frame: pd.DataFrame, rows: pd.DataFrame, used: set[str]) -> pd.DataFrame:
    """`frame` (exported rows) followed by the input's other columns, `rows` holding its rows in the same order; an
    input column named like an export column keeps its values as `input_<name>`."""
    extra = rows[[c for c in rows.columns if c not in used]].reset_index(drop=True)
    extra.columns = [_free_name(frame, c) for c in extra.columns]
    return pd.concat([frame.reset_index(drop=True), extra], axis=1)


def _free_name(frame: pd.DataFrame, name: str) -> str:
    candidate, n = name, 1
    while candidate in frame.columns:
        candidate = f"input_{name}" if n == 1 else f"input_{name}_{n}"
        n += 1
    return candidate


def export_csv(records: Iterable[Record]) -> bytes:
    """UTF-8 CSV with a BOM (Excel reads Chinese), formula-like cells neutralised; labels written as typed (2, not
    2.0)."""
    return safe_csv_bytes(export_frame(records))


def export_json(records: Iterable[Record]) -> str:
    """The same rows as a JSON list, Chinese kept readable; no key of the OPTIONAL_COLUMNS no row has."""
    rows = [_normalised(r) for r in records]
    absent = {c for c in OPTIONAL_COLUMNS if all(r[c] is None for r in rows)}
    return json.dumps([{k: v for k, v in r.items() if k not in absent} for r in rows], ensure_ascii=False, indent=2,
                      allow_nan=False)


def _normalised(record: Record) -> Record:
    """A row as written: the schema's columns in order, then its other keys, an empty cell (None, or NaN from a
    table) as None, token counts as whole numbers, labels as people wrote them."""
    row = {column: _empty_as_none(record.get(column)) for column in _COLUMNS}
    row.update({key: _empty_as_none(value) for key, value in record.items() if key not in row})
    if row["tokens"] is not None:
        row["tokens"] = int(row["tokens"])  # type: ignore[call-overload]
    if row["truncated"] is not None:
        row["truncated"] = bool(row["truncated"])
    for column in ("passage_start", "passage_end"):
        if row[column] is not None:
            row[column] = int(row[column])  # type: ignore[call-overload]
    row["label"] = label_value(row["label"])
    return row


def _empty_as_none(value: object) -> object:
    return None if isinstance(value, float) and math.isnan(value) else value


def label_value(label: object) -> int | float | None:
    """A relevance label as people wrote it: 2 for 2.0, 0.5 stays 0.5, None for no label."""
    if label is None:
        return None
    value = float(label)  # type: ignore[arg-type]
    if math.isnan(value):
        return None
    return int(value) if value.is_integer() else value
