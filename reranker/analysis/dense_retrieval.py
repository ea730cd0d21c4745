"""Dense and hybrid first stages for an evaluation: an embedding model (Qwen3-Embedding with its query prompt,
bge-small-zh-v1.5, any other sentence-transformers model) embeds the corpus once, the embeddings are kept on disk,
and each query's nearest documents by cosine are found by exact search (numpy, every document compared); hybrid fuses
BM25's ranking and the dense one by reciprocal rank fusion. The embedding model itself is the engine's
(engine/embeddings.py), handed in as an `Embedder`.

Exact search holds every document's embedding in memory (documents x dimensions x 4 bytes: a million documents of
1024 dimensions is 4.1 GB); a corpus whose embeddings need more than the memory allowed (half the memory free, said
by the caller) is refused before anything is embedded, naming the size: past that, use an approximate index of your
own and give its run (--run).

The embeddings are filed under a key of the model (`Embedder.identity`), the prompt documents are embedded with,
and the corpus's content (every id and text): a second evaluation of the same corpus with the same model embeds
nothing, and a changed corpus or model is embedded again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from reranker.core.failures import BadRequest, TooLarge
from reranker.formats.retrieval import Run

RRF_K = 60
"""Reciprocal rank fusion's constant (Cormack et al., 2009): a document's fused score is the sum over the runs of
1 / (RRF_K + its rank there)."""
MEMORY_SHARE = 0.5
"""The share of the memory free now that exact search's embeddings may take."""
_SEARCH_CHUNK = 256
"""Queries compared with every document at a time (a chunk's scores: queries x documents x 4 bytes)."""


@dataclass(frozen=True)
class FirstStage:
    """What makes the first stage when no run is given: "bm25", "dense" or "hybrid", and the embedding model."""

    kind: str = "bm25"
    model: str | None = None

    def text(self) -> str:
        if self.kind == "dense":
            return f"dense: {self.model} (exact cosine search)"
        if self.kind == "hybrid":
            return f"hybrid: reciprocal rank fusion (k={RRF_K}) of BM25 (bm25s) and dense {self.model}"
        return "BM25 (bm25s)"


def parse_first_stage(text: str) -> FirstStage:
    """`bm25`, `dense:MODEL` or `hybrid:MODEL` (MODEL: a sentence-transformers embedding model's hub id or folder)."""
    kind, _, model = text.strip().partition(":")
    kind, model = kind.strip().lower(), model.strip()
    if kind == "bm25" and not model:
        return FirstStage()
    if kind in ("dense", "hybrid") and model:
        return FirstStage(kind, model)
    raise BadRequest(f"--first-stage {text!r}: give bm25, dense:MODEL or hybrid:MODEL, MODEL being a "
                     "sentence-transformers embedding model (e.g. dense:Qwen/Qwen3-Embedding-0.6B or "
                     "hybrid:BAAI/bge-small-zh-v1.5)")


class Embedder(Protocol):
    """An embedding model (engine/embeddings.py's EmbeddingModel): normalized float32 rows, its own prompts applied."""

    name: str
    dimensions: int
    document_prompt: str

    @property
    def identity(self) -> list: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class DenseStats:
    """What a dense first stage cost: documents embedded now and read from the cache, and where the cache is."""

    embedded: int
    cached: int
    cache_file: Path
    dimensions: int
    seconds_embedding: float = 0.0


def check_fits(documents: int, dimensions: int, memory_bytes: int | None) -> None:
    """TooLarge when `documents` embeddings of `dimensions` floats need more than `memory_bytes` (None: no check)."""
    needed = documents * dimensions * 4
    if memory_bytes is not None and needed > memory_bytes:
        raise TooLarge(f"exact search over {documents:,} documents of {dimensions:,} dimensions holds "
                       f"{needed / 1e9:.2f} GB of embeddings in memory, more than the {memory_bytes / 1e9:.2f} GB it "
                       f"may take here (half the memory free): up to about {memory_bytes // (dimensions * 4):,} "
                       "documents fit. Give a run of your own approximate index instead (--run FIRST.trec), or a "
                       "smaller corpus")


def corpus_embeddings(embedder: Embedder, documents: Mapping[str, str], cache_dir: Path,
                      memory_bytes: int | None = None) -> tuple[np.ndarray, DenseStats]:
    """The documents' normalized embeddings (rows in `documents`' order), from the cache when the same model embedded
    the same corpus before, else embedded now and kept there."""
    check_fits(len(documents), embedder.dimensions, memory_bytes)
    cache_file = Path(cache_dir) / f"{_cache_key(embedder, documents)}.npy"
    if cache_file.exists():
        kept = np.load(cache_file, allow_pickle=False)
        if kept.shape == (len(documents), embedder.dimensions):
            return kept, DenseStats(0, len(documents), cache_file, embedder.dimensions)
    started = time.perf_counter()
    embedded = embedder.embed_documents(list(documents.values()))
    seconds = time.perf_counter() - started
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_name(f".{cache_file.stem}.partial.npy")
    np.save(partial, embedded, allow_pickle=False)
    partial.replace(cache_file)
    return embedded, DenseStats(len(documents), 0, cache_file, embedder.dimensions, seconds)


def exact_search(queries: np.ndarray, documents: np.ndarray, ids: Sequence[str],
                 depth: int) -> list[list[tuple[str, float]]]:
    """Each query's `depth` documents of highest cosine (the rows are normalized: the dot product), best first; equal
    scores by document id, highest first, as trec_eval reads a run."""
    out: list[list[tuple[str, float]]] = []
    k = min(depth, len(ids))
    for start in range(0, len(queries), _SEARCH_CHUNK):
        scores = queries[start:start + _SEARCH_CHUNK] @ documents.T
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
            ranked = sorted(top.tolist(), key=lambda i: (-float(row[i]), _Descending(ids[i])))
            out.append([(ids[i], float(row[i])) for i in ranked])
    return out


def dense_run(embedder: Embedder, queries: Mapping[str, str], documents: Mapping[str, str], depth: int,
              cache_dir: Path, memory_bytes: int | None = None) -> tuple[Run, DenseStats]:
    """Each query's `depth` nearest documents by cosine, and what embedding them cost."""
    embedded, stats = corpus_embeddings(embedder, documents, cache_dir, memory_bytes)
    qids = list(queries)
    found = exact_search(embedder.embed_queries([queries[q] for q in qids]), embedded, list(documents), depth)
    return dict(zip(qids, found)), stats


def reciprocal_rank_fusion(runs: Sequence[Run], depth: int, k: int = RRF_K) -> Run:
    """Each query's `depth` best documents by the sum over `runs` of 1 / (k + rank), ranks from 1; equal sums by
    document id, highest first, as trec_eval reads a run."""
    fused: Run = {}
    for qid in dict.fromkeys(q for run in runs for q in run):
        sums: dict[str, float] = {}
        for run in runs:
            for rank, (docid, _) in enumerate(run.get(qid, []), start=1):
                sums[docid] = sums.get(docid, 0.0) + 1.0 / (k + rank)
        fused[qid] = sorted(sums.items(), key=lambda p: (-p[1], _Descending(p[0])))[:depth]
    return fused


def make_first_stage(stage: FirstStage, queries: Mapping[str, str], documents: Mapping[str, str], depth: int, *,
                     cache_dir: Path, open_embedder: Callable[[str], Embedder], memory_bytes: int | None = None,
                     report: Callable[[str], None] = lambda line: None) -> Run:
    """The first stage's run of `queries` over `documents`, `depth` deep; `open_embedder` opens the embedding model
    (engine/embeddings.py's EmbeddingModel); `memory_bytes`: what exact search's embeddings may take."""
    from reranker.analysis.first_stage import bm25_run

    if stage.kind == "bm25":
        return bm25_run(queries, documents, depth)
    assert stage.model is not None
    dense, stats = dense_run(open_embedder(stage.model), queries, documents, depth, cache_dir, memory_bytes)
    rate = f" ({stats.embedded / stats.seconds_embedding:,.1f} documents/s)" if stats.seconds_embedding else ""
    report(f"dense first stage {stage.model}: {stats.embedded:,} documents embedded now{rate}, {stats.cached:,} "
           f"from the cache ({stats.cache_file}); {stats.dimensions:,} dimensions, exact search")
    if stage.kind == "dense":
        return dense
    return reciprocal_rank_fusion([bm25_run(queries, documents, depth), dense], depth)


def allowed_memory(free_bytes: int | None) -> int | None:
    """What exact search's embeddings may take when `free_bytes` are free (None: unknown, no check)."""
    return None if free_bytes is None else int(free_bytes * MEMORY_SHARE)


def first_stage_maker(stage: FirstStage, cache_dir: Path, open_embedder: Callable[[str], Embedder],
                      memory_bytes: int | None, report: Callable[[str], None] = lambda line: None
                      ) -> Callable[[Mapping[str, str], Mapping[str, str], int], Run] | None:
    """What makes `stage`'s run for load_evaluation (None: BM25, its default): the embeddings kept in `cache_dir`.
    The evaluate command and the Evaluate page make their first stage through this."""
    if stage.kind == "bm25":
        return None
    return functools.partial(make_first_stage, stage, cache_dir=cache_dir, open_embedder=open_embedder,
                             memory_bytes=memory_bytes, report=report)


def _cache_key(embedder: Embedder, documents: Mapping[str, str]) -> str:
    corpus = hashlib.sha256()
    for docid, text in documents.items():
        corpus.update(json.dumps([docid, text], ensure_ascii=False).encode("utf-8"))
    what = [embedder.identity, embedder.document_prompt, corpus.hexdigest()]
    return hashlib.sha256(json.dumps(what, ensure_ascii=False).encode("utf-8")).hexdigest()


class _Descending(str):
    """A document id that sorts highest first (trec_eval's order of equal scores)."""

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)
