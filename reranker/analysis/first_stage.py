"""A first stage for an evaluation without a run of its own: BM25 over the corpus (the bm25s library), with words
that work for Chinese as well as English: a Latin word is a token (lowercased), a run of Chinese characters gives
its character bigrams (and a lone character itself), as Lucene's CJK analyzer does."""

from __future__ import annotations

import re
from collections.abc import Mapping

import bm25s
import numpy as np

from reranker.formats.retrieval import Run

_WORD = re.compile(r"[0-9A-Za-z\u00c0-\u024f]+|[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def terms(text: str) -> list[str]:
    """The text's BM25 terms: Latin words lowercased; each run of CJK characters as its overlapping bigrams."""
    out: list[str] = []
    for match in _WORD.finditer(text):
        piece = match.group()
        if _CJK.match(piece):
            out.extend(piece[i:i + 2] for i in range(max(len(piece) - 1, 1)))
        else:
            out.append(piece.lower())
    return out


def bm25_run(queries: Mapping[str, str], documents: Mapping[str, str], depth: int = 100) -> Run:
    """Each query's `depth` best documents by BM25 (bm25s defaults: Lucene's k1=1.5, b=0.75), best first."""
    ids = list(documents)
    tokens = [terms(documents[d]) for d in ids]
    vocabulary = {term: n for n, term in enumerate(sorted({t for doc in tokens for t in doc}))}
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenization.Tokenized(ids=[[vocabulary[t] for t in doc] for doc in tokens],
                                                 vocab=vocabulary), show_progress=False)
    run: Run = {}
    k = min(depth, len(ids))
    for qid, text in queries.items():
        known = [vocabulary[t] for t in terms(text) if t in vocabulary]
        scores = retriever.get_scores(known) if known else np.zeros(len(ids))
        best = np.argsort(-scores, kind="stable")[:k]
        run[qid] = [(ids[i], float(scores[i])) for i in best if scores[i] > 0]
    return run
