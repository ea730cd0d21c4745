"""The files retrieval people keep their evaluations in: a BEIR folder (`corpus.jsonl`, `queries.jsonl`,
`qrels/test.tsv`), plain TREC qrels, TSV topics, and TREC runs, read and written.

Every problem is told by file and line, in words for the person who made the file. The corpus is read as a stream:
only the documents asked for are kept (a 200 MB corpus costs the memory of what is reranked, not its size). Files
may be UTF-8 (with or without BOM) or GBK/GB18030, line by line.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reranker.core.failures import BadRequest

Qrels = dict[str, dict[str, int]]
"""Query id -> document id -> graded relevance (0: not relevant)."""
Run = dict[str, list[tuple[str, float]]]
"""Query id -> (document id, score), best first as trec_eval reads it."""


class DatasetError(BadRequest, ValueError):
    """A file of an evaluation cannot be used; the message names the file and line and says what to fix."""


@dataclass(frozen=True)
class Dataset:
    """A labelled collection: where its corpus is, its queries and its relevance labels."""

    corpus: Path
    queries: dict[str, str]
    qrels: Qrels


def beir_files(folder: Path, queries: Path | None = None, qrels: Path | None = None) -> tuple[Path, Path, Path]:
    """(corpus, queries, qrels) of a BEIR folder: corpus.jsonl, queries.jsonl (or .tsv), qrels/test.tsv (or the
    one file in qrels/); `queries` (TSV topics, say) and `qrels` (TREC qrels, say) stand for the folder's own."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder (a BEIR dataset is a folder with corpus.jsonl, queries.jsonl "
                           "and qrels/test.tsv)")
    corpus = folder / "corpus.jsonl"
    queries = queries or next((q for q in (folder / "queries.jsonl", folder / "queries.tsv") if q.exists()),
                              folder / "queries.jsonl")
    if qrels is None:
        qrels = folder / "qrels" / "test.tsv"
        found = sorted((folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        qrels = found[0] if not qrels.exists() and len(found) == 1 else qrels
    for path in (corpus, queries, qrels):
        if not path.exists():
            raise DatasetError(f"{path}: missing; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv")
    return corpus, queries, qrels


def lines_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, text without its line end) of each line, UTF-8 or else GB18030 per line; blank lines
    skipped."""
    try:
        with Path(path).open("rb") as raw:
            for number, data in enumerate(raw, start=1):
                if number == 1 and data.startswith(b"\xef\xbb\xbf"):
                    data = data[3:]
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    try:
                        text = data.decode("gb18030")
                    except UnicodeDecodeError:
                        raise DatasetError(f"{path}:{number}: neither UTF-8 nor GBK text; save the file as "
                                           "UTF-8") from None
                text = text.rstrip("\r\n")
                if text.strip():
                    yield number, text
    except OSError as e:
        raise DatasetError(f"{path}: cannot be read ({e.strerror or e})") from None


def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    for number, text in lines_of(path):
        try:
            record = json.loads(text)
        except ValueError as e:
            raise DatasetError(f"{path}:{number}: not valid JSON ({e.msg}); each line is one JSON object") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}:{number}: not a JSON object; each line is one object with an \"_id\"")
        if "_id" not in record:
            raise DatasetError(f"{path}:{number}: no \"_id\" field")
        yield number, record


def read_queries(path: Path) -> dict[str, str]:
    """BEIR queries.jsonl (`_id`, `text`) or TSV topics (`id<TAB>text`, one per line)."""
    path = Path(path)
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    if path.suffix.lower() == ".jsonl":
        rows = ((n, str(r["_id"]), r.get("text")) for n, r in _json_lines(path))
    else:
        rows = _tsv_topics(path)
    for number, qid, text in rows:
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{path}:{number}: query {qid!r} has no text")
        if qid in queries:
            raise DatasetError(f"{path}:{number}: query id {qid!r} again (first on line {first_line[qid]}); give each "
                               "query its own id")
        queries[qid], first_line[qid] = text.strip(), number
    if not queries:
        raise DatasetError(f"{path}: holds no queries")
    return queries


def _tsv_topics(path: Path) -> Iterator[tuple[int, str, str]]:
    for number, text in lines_of(path):
        fields = text.split("\t")
        if len(fields) < 2:
            raise DatasetError(f"{path}:{number}: a topic line is the query id, a tab, then its text")
        if number == 1 and fields[0].strip().lower() in ("id", "qid", "query-id", "query_id", "_id"):
            continue
        yield number, fields[0].strip(), "\t".join(fields[1:])


def read_qrels(path: Path) -> Qrels:
    """BEIR qrels (`query-id<TAB>corpus-id<TAB>score`, with that header) or TREC qrels (`qid 0 docid rel`)."""
    qrels: Qrels = {}
    for number, text in lines_of(path):
        fields = text.split()
        if number == 1 and fields and fields[0].lower() in ("query-id", "query_id", "qid"):
            continue
        if len(fields) == 3:
            qid, docid, grade = fields
        elif len(fields) == 4:
            qid, _, docid, grade = fields
        else:
            raise DatasetError(f"{path}:{number}: {len(fields)} columns; a qrels line is 'query-id corpus-id score' "
                               "(BEIR) or 'qid 0 docid relevance' (TREC)")
        try:
            relevance = int(float(grade))
        except ValueError:
            raise DatasetError(f"{path}:{number}: the relevance {grade!r} is not a number") from None
        labels = qrels.setdefault(qid, {})
        if docid in labels:
            raise DatasetError(f"{path}:{number}: query {qid!r} labels document {docid!r} twice")
        labels[docid] = relevance
    if not qrels:
        raise DatasetError(f"{path}: holds no relevance labels")
    return qrels


def read_run(path: Path) -> Run:
    """A TREC run (`qid Q0 docid rank score tag`), each query's documents in the order trec_eval reads them: by score,
    highest first, ties by document id, highest first (the rank column is not read)."""
    unsorted: dict[str, dict[str, float]] = {}
    for number, text in lines_of(path):
        fields = text.split()
        if len(fields) != 6:
            raise DatasetError(f"{path}:{number}: {len(fields)} columns; a run line is 'qid Q0 docid rank score tag'")
        qid, _, docid, _, score, _ = fields
        try:
            value = float(score)
        except ValueError:
            raise DatasetError(f"{path}:{number}: the score {score!r} is not a number") from None
        if math.isnan(value):
            raise DatasetError(f"{path}:{number}: the score is NaN")
        scores = unsorted.setdefault(qid, {})
        if docid in scores:
            raise DatasetError(f"{path}:{number}: query {qid!r} lists document {docid!r} twice")
        scores[docid] = value
    if not unsorted:
        raise DatasetError(f"{path}: holds no ranked documents")
    return {qid: trec_order(scores.items()) for qid, scores in unsorted.items()}


def trec_order(scored: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """(document id, score) in trec_eval's order: score, highest first; ties by document id, highest first."""
    by_id = sorted(scored, key=lambda item: item[0], reverse=True)
    return sorted(by_id, key=lambda item: -item[1])  # stable: ties keep the id order


def run_text(run: Mapping[str, Sequence[tuple[str, float]]], tag: str) -> str:
    """A TREC run of each query's documents in the order given; scores as given (they must fall with rank)."""
    return "".join(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n"
                   for qid, ranked in run.items() for rank, (docid, score) in enumerate(ranked, start=1))


def write_run(path: Path, run: Mapping[str, Sequence[tuple[str, float]]], tag: str) -> None:
    """run_text written whole to `path`, or not at all."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(run_text(run, tag), encoding="utf-8")
    partial.replace(target)


def read_documents(path: Path, wanted: set[str] | None = None) -> dict[str, str]:
    """The corpus's texts, `(title + " " + text).strip()` as BEIR's reranking code joins them: of the `wanted` ids
    only (None: all), read as a stream. Every id is checked once: a duplicate, a line without text, an empty corpus
    are refused."""
    texts: dict[str, str] = {}
    seen: dict[str, int] = {}
    for number, record in _json_lines(path):
        docid = str(record["_id"])
        if docid in seen:
            raise DatasetError(f"{path}:{number}: document id {docid!r} again (first on line {seen[docid]})")
        seen[docid] = number
        if wanted is None or docid in wanted:
            title, text = record.get("title") or "", record.get("text")
            if not isinstance(text, str) or not isinstance(title, str):
                raise DatasetError(f"{path}:{number}: document {docid!r} has no \"text\" string")
            texts[docid] = f"{title} {text}".strip()
    if not seen:
        raise DatasetError(f"{path}: the corpus is empty")
    if wanted is not None and len(texts) < len(wanted):
        missing = sorted(wanted - set(texts))
        raise DatasetError(f"{path}: {len(missing)} document{'s' if len(missing) > 1 else ''} the run ranks "
                           f"{'are' if len(missing) > 1 else 'is'} not in the corpus: {', '.join(missing[:5])}"
                           f"{' ...' if len(missing) > 5 else ''}")
    return texts


def labelled_dataset_zip(query: str, documents: Sequence[str], labels: Sequence[float]) -> bytes:
    """One query's documents and their relevance labels as a zip of a BEIR folder (corpus.jsonl, queries.jsonl,
    qrels/test.tsv) with the documents' given order as the first stage's run (run.trec): what the Evaluate page and
    `python -m reranker evaluate` read, to measure a reranking against the order the documents came in. The query is
    `q1`, the documents `d1`, `d2`, … in their order."""
    ids = [f"d{n}" for n in range(1, len(documents) + 1)]
    corpus = "".join(json.dumps({"_id": i, "title": "", "text": d}, ensure_ascii=False) + "\n"
                     for i, d in zip(ids, documents, strict=True))
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"q1\t{i}\t{round(g)}\n"
                                                     for i, g in zip(ids, labels, strict=True))
    given_order = {"q1": [(i, float(len(ids) - n)) for n, i in enumerate(ids)]}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("corpus.jsonl", corpus)
        archive.writestr("queries.jsonl", json.dumps({"_id": "q1", "text": query}, ensure_ascii=False) + "\n")
        archive.writestr("qrels/test.tsv", qrels)
        archive.writestr("run.trec", run_text(given_order, "given-order"))
    return out.getvalue()
