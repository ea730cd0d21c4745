"""Other cross-encoders in this process, through sentence-transformers' CrossEncoder: bge-reranker, MiniLM,
mxbai-rerank v1, and Qwen3-Reranker's sequence-classification form (engine/seq_cls_export.py); not jina's rerankers,
whose code comes with the model (trust_remote_code, never used here).

A cross-encoder reads the pair (query, document) and gives one logit; the score is its sigmoid (CrossEncoder's own
for one label). A Qwen3-Reranker in sequence-classification form (config.json: the export's marker, or
Qwen3ForSequenceClassification with one label) reads instead the pair (query part, document part) of
`prompt_halves`, instruction included, so its scores are the engine's. Documents too long for the model's window are
cut here, at a token boundary of their text (their end kept with keep_document_end), never the query or the prompt's
own parts: where the engine cuts token ids, this cuts text, the same tokens but where a cut falls inside a long word
(a run of one letter) that the tokenizer reads differently once cut. A control string typed into a text
(`<|im_end|>`) is read as the control token here, where the engine reads it as text. sentence-transformers is
imported when a model is opened (the `cross-encoder` extra).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from reranker.core.backend import Capabilities, RerankBackend, ScoringStopped, goes_on, unstoppable
from reranker.core.failures import BadRequest, ModelLoadError, PromptTooLong, UnsupportedOption
from reranker.core.model_names import INT8, KNOWN_MODELS, scored_name
from reranker.core.passages import estimated_spans, judge_in_passages
from reranker.core.prompt import DEFAULT_INSTRUCTION, classifier_pair, prompt_halves, resolve_instruction
from reranker.core.ranking import Judgement, Progress, Query
from reranker.engine.loading import dtype_kwarg, resolve_device, resolve_dtype
from reranker.engine.model_files import CROSS_ENCODER, EMBEDDING, architectures_text, model_kind
from reranker.engine.seq_cls_export import PAIR_ENDS, PROMPT_MARKER

KIND = "cross-encoder (sentence-transformers)"
Verdict = tuple[float, float]
_FIT_ROUNDS = 4
"""Rounds of cutting a document to fit: its tokens alone and in its pair differ by a token or two at the joins."""


class _Pair(NamedTuple):
    texts: tuple[str, str]
    tokens: int
    truncated: bool


def is_sequence_classifier(model: str) -> bool:
    """A folder or hub id of a cross-encoder for this backend: its config.json names a *ForSequenceClassification
    architecture, or it was saved as sentence-transformers' CrossEncoder (decided from those files alone: a folder,
    the hub cache, or config.json fetched alone where the hub may be asked). Qwen3-Reranker's own ids stay the
    engine's without a look-up."""
    return model not in KNOWN_MODELS and model_kind(model) == CROSS_ENCODER


def refuse_non_reranker(model: str) -> None:
    """BadRequest, naming what to give instead, when `model`'s files say it is an embedding model (an encoder
    without a classification head), which neither this backend nor the engine can rerank with."""
    if model not in KNOWN_MODELS and model_kind(model) == EMBEDDING:
        raise BadRequest(f"{model} is not a reranker: its files say it is an embedding model "
                         f"({architectures_text(model)}, no classification head). Give a cross-encoder (a "
                         "*ForSequenceClassification with one label, e.g. BAAI/bge-reranker-v2-m3) or a "
                         "Qwen3-Reranker; an embedding model is a first stage: evaluate --first-stage dense:MODEL")


class CrossEncoderReranker(RerankBackend):
    """A sequence classifier with one label loaded with sentence-transformers' CrossEncoder.

    model: a folder or a hub id (in the local hub cache, or fetched where the hub may be asked); device and dtype
    as the engine's (int8 is the engine's alone); max_length: tokens of a pair at most (and never more than the
    model's own window); batch_size and batch_tokens: pairs and padded tokens per forward pass at most."""

    def __init__(self, model: str, device: str | None = None, dtype: str | torch.dtype | None = None,
                 max_length: int = 8192, batch_size: int = 16, batch_tokens: int | None = None) -> None:
        self.model_id = model
        self.device = resolve_device(device)
        resolved = resolve_dtype(dtype, self.device)
        if resolved == INT8:
            raise UnsupportedOption("dtype int8 is the Qwen3 engine's approximate mode; a cross-encoder runs in "
                                    "float32, bfloat16 or float16")
        self.dtype_name = str(resolved).removeprefix("torch.")
        self.model_name = scored_name(model, self.dtype_name)
        self.encoder = _open(model, self.device, resolved)
        self.tokenizer = self.encoder.tokenizer
        self.max_length = min(max_length, self.tokenizer.model_max_length)
        self.tokenizer.model_max_length = self.max_length
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens or (16384 if self.device.type == "cpu" else 65536)
        config = self.encoder.model.config
        self.pair_end = PAIR_ENDS.get(getattr(config, PROMPT_MARKER, None))
        """What its tokenizer adds after text 2 (our export): pairs are `classifier_pair`'s without it."""
        self.reads_prompt_halves = (getattr(config, PROMPT_MARKER, None) is not None
                                    or list(config.architectures or []) == ["Qwen3ForSequenceClassification"])
        """It is a Qwen3-Reranker in sequence-classification form: pairs are `prompt_halves`, with instructions."""
        self._lock = threading.RLock()  # re-entered by a progress callback that scores in between passes

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(KIND, "in this process", in_process=True, instruction=self.reads_prompt_halves,
                            yields_between_passes=True, max_length=self.max_length)

    def describe(self) -> dict[str, object]:
        pair = "Qwen3-Reranker's prompt halves" if self.reads_prompt_halves else "(query, document)"
        return {**super().describe(), "device": str(self.device), "dtype": self.dtype_name,
                "max_length": self.max_length, "pair": pair}

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        if any(q.passage_tokens is not None or q.max_passages is not None for q in queries):
            return judge_in_passages(queries, lambda plain: self.judge_many(plain, unstoppable(progress)),
                                     self._spans, self.max_length - self._count(Query("", []), [""])[0])
        for q in queries:
            self._check(q)
        fitted = [self._fit(q) for q in queries]
        verdicts, complete = self._run([pair for pairs in fitted for pair in pairs], progress)
        judged: list[list[Judgement | None]] = []
        at = 0
        for pairs in fitted:
            judged.append([None if v is None else Judgement(v[0], v[1], p.tokens, p.truncated)
                           for p, v in zip(pairs, verdicts[at:at + len(pairs)])])
            at += len(pairs)
        if not complete:
            raise ScoringStopped(judged)
        return judged  # type: ignore[return-value]  # complete: no None left

    def _check(self, q: Query) -> None:
        if isinstance(q.documents, str):
            raise TypeError("documents must be a list of strings, not one string")
        if not self.reads_prompt_halves and resolve_instruction(q.instruction) != DEFAULT_INSTRUCTION:
            raise UnsupportedOption(f"{self.model_id} is a cross-encoder that reads the query and the document alone: "
                                    "it takes no instruction (only Qwen3-Reranker and its seq-cls export do); send "
                                    "the query without one")

    def _texts(self, q: Query, document: str) -> tuple[str, str]:
        if not self.reads_prompt_halves:
            return q.query, document
        if self.pair_end is None:
            return prompt_halves(q.query, document, q.instruction)
        return classifier_pair(q.query, document, q.instruction, self.pair_end)

    def _count(self, q: Query, documents: Sequence[str]) -> list[int]:
        """Tokens of each document's pair, as the model reads it (special tokens included), uncut."""
        if not documents:
            return []
        firsts, seconds = zip(*(self._texts(q, d) for d in documents))
        encoded = self.tokenizer(list(firsts), list(seconds), truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def _fit(self, q: Query) -> list[_Pair]:
        """Each document's pair: cut to document_tokens, then its document cut until the pair fits max_length."""
        documents, cut = list(q.documents), [False] * len(q.documents)
        if q.document_tokens is not None:
            documents, cut = self._cut(documents, [q.document_tokens] * len(documents), q.keep_document_end)
        counts = self._count(q, documents)
        over = [i for i, n in enumerate(counts) if n > self.max_length]
        if over and q.refuse_truncation:
            raise PromptTooLong(f"a document does not fit the model's limit of {self.max_length:,} tokens with its "
                                f"query (it starts {documents[over[0]][:40]!r}); allow truncation, or send it shorter")
        if over:
            shorter, fitted = self._shorten(q, [documents[i] for i in over], [counts[i] for i in over])
            for i, document, n in zip(over, shorter, fitted):
                documents[i], cut[i], counts[i] = document, True, min(n, self.max_length)
        return [_Pair(self._texts(q, d), n, c) for d, n, c in zip(documents, counts, cut)]

    def _shorten(self, q: Query, documents: list[str], counts: list[int]) -> tuple[list[str], list[int]]:
        """The documents cut (from their end, or their start with keep_document_end) until each one's pair fits
        max_length, as the engine cuts a prompt, and their pairs' tokens: first by the pair's excess, then by what
        the joins still add (a token or two, read in context), a few rounds at most. A query too long for the window
        leaves an empty document, its pair then cut by CrossEncoder."""
        slack = 2 if q.keep_document_end else 0  # the engine's: its start cut 2 tokens short of the excess
        keep = [len(spans) - (n - self.max_length) - slack for spans, n in zip(self._spans(documents), counts)]
        for _ in range(_FIT_ROUNDS):
            shorter, _ = self._cut(documents, [max(k, 0) for k in keep], q.keep_document_end)
            fitted = self._count(q, shorter)
            excess = [max(n - self.max_length, 0) if k > 0 else 0 for n, k in zip(fitted, keep)]
            if not any(excess):
                break
            keep = [k - e for k, e in zip(keep, excess)]
        return shorter, fitted

    def _cut(self, documents: list[str], keep: list[int], keep_end: bool) -> tuple[list[str], list[bool]]:
        """Each document cut to its first (or last) `keep` tokens, at a token boundary of its text; and whether it
        was cut."""
        out, cut = list(documents), [False] * len(documents)
        for i, (text, spans, n) in enumerate(zip(documents, self._spans(documents), keep)):
            if len(spans) > n:
                cut[i] = True
                out[i] = "" if n <= 0 else text[spans[len(spans) - n][0]:] if keep_end else text[:spans[n - 1][1]]
        return out, cut

    def _spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Each text's tokens as character spans (estimated with a tokenizer that gives no offsets)."""
        if not texts:
            return []
        if not getattr(self.tokenizer, "is_fast", False):
            return [estimated_spans(t) for t in texts]
        offsets = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                                 verbose=False)["offset_mapping"]
        return [[(int(a), int(b)) for a, b in spans] for spans in offsets]

    def _run(self, pairs: list[_Pair], progress: Progress | None) -> tuple[list[Verdict | None], bool]:
        """(score, logit) of each pair in length-sorted forward passes, and whether every pair was scored: a
        progress callback that raises StopScoring stops the passes there (None for each pair not scored)."""
        verdicts: list[Verdict | None] = [None] * len(pairs)
        done = 0
        with self._lock:
            for members in self._passes(pairs):
                logits = self.encoder.predict([pairs[i].texts for i in members], batch_size=len(members),
                                              activation_fn=torch.nn.Identity(), convert_to_tensor=True,
                                              show_progress_bar=False).float().reshape(len(members))
                for i, score, logit in zip(members, torch.sigmoid(logits).tolist(), logits.tolist()):
                    verdicts[i] = (score, logit)
                done += len(members)
                if progress is not None and not goes_on(progress, done, len(pairs)):
                    return verdicts, done == len(pairs)
        return verdicts, True

    def _passes(self, pairs: list[_Pair]) -> list[list[int]]:
        """The pairs longest first, in runs of at most batch_size pairs and batch_tokens padded tokens."""
        passes: list[list[int]] = []
        for i in sorted(range(len(pairs)), key=lambda i: -pairs[i].tokens):
            current = passes[-1] if passes else []
            widest = pairs[current[0]].tokens if current else 0
            if not current or len(current) >= self.batch_size or (len(current) + 1) * widest > self.batch_tokens:
                passes.append([i])
            else:
                current.append(i)
        return passes


def _open(model: str, device: torch.device, dtype: torch.dtype) -> Any:
    """sentence-transformers' CrossEncoder over `model`; ModelLoadError, with the fix, when it cannot be."""
    try:
        from sentence_transformers import CrossEncoder
    except ImportError:
        raise ModelLoadError(f"{model} is a cross-encoder (a sequence classifier), which is read with "
                             "sentence-transformers, not installed here: pip install 'qwen-ranker-pro[cross-encoder]' "
                             "(from a clone: pip install '.[cross-encoder]')") from None
    where = Path(model).expanduser()
    try:
        encoder = CrossEncoder(str(where) if where.is_dir() else model, device=str(device),
                               model_kwargs={dtype_kwarg(): dtype})
    except Exception as e:  # noqa: BLE001 - every failure becomes one explained error
        said = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ModelLoadError(f"Could not load the cross-encoder {model!r} with sentence-transformers: "
                             f"{type(e).__name__}{': ' + said if said else ''}. Fix: give a folder holding "
                             "config.json (a *ForSequenceClassification), the tokenizer files and the weights") from e
    if encoder.num_labels != 1:
        raise ModelLoadError(f"{model} is a classifier with {encoder.num_labels} labels; a reranker here gives one "
                             "logit per pair (num_labels 1), as bge-reranker, MiniLM or a seq-cls Qwen3-Reranker do")
    return encoder
