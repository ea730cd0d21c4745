"""A labelled dataset uploaded on a page (Evaluate, Verify, Tune): the uploader of a BEIR folder's files, saved under
their BEIR names (evaluation_view.save_uploads), and what is still missing, said in the page. One place, so the three
pages take the same files and say the same things."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from reranker.workbench import ASSETS, widgets
from reranker.workbench.evaluation_view import save_uploads

SAMPLE = ASSETS / "eval_sample"
"""The sample dataset (30 queries, English and Chinese) and its BM25 run."""
TYPES = ["jsonl", "tsv", "trec", "txt", "zip"]


@dataclass
class UploadedDataset:
    folder: Path
    run_file: Path | None
    """The first stage's run when one was uploaded (else BM25 makes it)."""
    ready: bool
    """Every file needed is there and readable."""
    digest: str
    """The uploaded files' fingerprint: a change of files is a change of data."""
    names: dict[str, str] = field(default_factory=dict)
    """BEIR name -> the name the file was uploaded as."""


def uploaded_dataset(key: str, folder_for: Callable[[str], Path]) -> UploadedDataset:
    """Draw the uploader (widget `key`), save what was uploaded into `folder_for(digest)`, and say what cannot be
    used or is still needed."""
    uploads = st.file_uploader("A BEIR folder's files (corpus.jsonl, queries.jsonl, qrels/test.tsv) and, if you have "
                               "one, the first stage's run (.trec); or one .zip of them", type=TYPES,
                               accept_multiple_files=True, key=key)
    contents = [(u.name, u.getvalue()) for u in uploads or []]
    digest = hashlib.sha256(repr(sorted((n, hashlib.sha256(d).hexdigest()) for n, d in contents)).encode()).hexdigest()
    folder = folder_for(digest)
    ready = True
    names: dict[str, str] = {}
    try:
        names = save_uploads(contents, folder) if contents else {}
    except ValueError as e:
        st.error(widgets.plain_markdown(str(e)), title="These files cannot be used")
        ready = False
    missing = [need for need in ("corpus.jsonl", "qrels/test.tsv") if need not in names]
    if not any(n.startswith("queries.") for n in names):
        missing.insert(1, "queries.jsonl (or TSV topics)")
    if ready and missing:
        st.info(f"Still needed: {', '.join(missing)}. A run (.trec) is optional: without one BM25 makes the first "
                "stage.", icon=":material/upload_file:")
        ready = False
    return UploadedDataset(folder, folder / "run.trec" if "run.trec" in names else None, ready, digest, names)
