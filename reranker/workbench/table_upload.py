"""An uploaded table of (query, document) pairs on the CSV batches page: read (a file with unreadable rows may go on
without them), its columns mapped to the parts they play, its pairs taken out. Each step says on the page why it
cannot go on, and answers None then."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from reranker.formats.columns import guess_columns
from reranker.formats.tables import (
    PairRow,
    TableError,
    UnreadableRow,
    decode_text,
    delimiter_of,
    is_json,
    pairs_from_table,
    read_table,
    read_table_skipping,
)
from reranker.workbench import widgets

NONE = "(none)"
"""The choice of no column, for the optional parts."""


def uploaded_table(upload: UploadedFile) -> tuple[pd.DataFrame, bytes] | None:
    """The upload as a table, and what a background job gets of it; None when it cannot be used (said on the page).
    A file with rows that cannot be read may go on without them, when the user says so."""
    data, name = upload.getvalue(), widgets.plain_markdown(upload.name)
    try:
        return read_table(data, upload.name), data
    except UnreadableRow as e:
        st.error(widgets.plain_markdown(str(e)), title=f"{name} has a row that cannot be read")
    except TableError as e:
        st.error(widgets.plain_markdown(str(e)), title=f"{name} cannot be used")
        return None
    if not st.checkbox("Leave out the rows that cannot be read, and go on with the rest", key="batch_skip_bad"):
        return None
    try:
        table, skipped = read_table_skipping(data, upload.name)
    except TableError as again:
        st.error(widgets.plain_markdown(str(again)), title=f"{name} cannot be used")
        return None
    shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5:,} more" if len(skipped) > 5 else "")
    st.warning(widgets.plain_markdown(f"{len(skipped):,} left out ({shown}). "
                                      f"{widgets.counted(len(table), 'row is', 'rows are')} used; their "
                                      "input # counts the rows read."), icon=":material/rule:")
    # what a background job gets: the rows read, as they were (no cell changed), nothing it would refuse
    kept = (table.to_json(orient="records", lines=True, force_ascii=False) if is_json(upload.name) else
            table.to_csv(index=False, sep=delimiter_of(decode_text(data), upload.name)))
    return table, kept.encode("utf-8")


def _index_of(options: list[str], name: str | None, fallback: int) -> int:
    return options.index(name) if name in options else min(fallback, len(options) - 1)


def column_mapping(table: pd.DataFrame, file_name: str) -> dict[str, str | None] | None:
    """Which column plays which part, guessed from the header and chosen by the user; None when the table has no
    document column or the choice cannot work (said on the page)."""
    columns = list(table.columns)
    if len(columns) < 2:
        st.error(widgets.plain_markdown(
            f"{file_name} has one column ({columns[0]}); a batch needs a query column and a document column. "
            "Is it separated by something other than commas or tabs?"), title="No document column")
        return None
    guess = guess_columns(table)
    optional = [NONE, *columns]
    query_column, document_column, label_column, instruction_column = st.columns(4)
    query_name = query_column.selectbox("Query column", columns, index=_index_of(columns, guess["query"], 0),
                                        key="map_query")
    document_name = document_column.selectbox("Document column", columns,
                                              index=_index_of(columns, guess["document"], 1), key="map_document")
    label_name = label_column.selectbox("Label column (optional)", optional,
                                        index=_index_of(optional, guess["label"], 0), key="map_label")
    instruction_name = instruction_column.selectbox("Instruction column (optional)", optional,
                                                    index=_index_of(optional, guess["instruction"], 0),
                                                    key="map_instruction")
    unnamed = [f"{role} = {name}" for role, name in (("query", query_name), ("document", document_name))
               if guess[role] is None]
    if unnamed:
        st.warning(widgets.plain_markdown(
            f"No column is named like a {' or '.join(r.split(' =')[0] for r in unnamed)}, so the columns were guessed "
            f"by position: {', '.join(unnamed)}. Check them above before scoring."), icon=":material/help:")
    return {"query": query_name, "document": document_name, "label": None if label_name == NONE else label_name,
            "instruction": None if instruction_name == NONE else instruction_name}


def pair_rows(table: pd.DataFrame, mapping: dict[str, str | None]) -> list[PairRow] | None:
    """The table's (query, document) pairs under `mapping`; None when the mapping cannot be used (said)."""
    if mapping["query"] == mapping["document"]:
        st.error("The query and the document need different columns.")
        return None
    try:
        rows = pairs_from_table(table, mapping["query"], mapping["document"], mapping["label"],
                                mapping["instruction"])
    except TableError as e:
        st.error(widgets.plain_markdown(str(e)), title="These columns cannot be used")
        return None
    empty = sum(not r.query.strip() or not r.document.strip() for r in rows)
    if empty:
        st.warning(f"{empty} row{'s have' if empty > 1 else ' has'} an empty query or document; "
                   "they are scored as they are.")
    return rows
