"""Qwen3Reranker: the score of the model card, computed without its waste.

Three things make it fast, none of which changes a score:
- only the final position's hidden state meets the LM head, and only its "yes" and "no" rows;
- the prompt part every document of a query shares (system + instruction + query) runs once, and
  its key/value cache is reused by each document; the part every query under one instruction shares
  (system + instruction) is kept across calls, so many small requests pay for little more than their
  own query and documents;
- documents go in length-sorted forward passes under a token budget, so padding is rare.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from contextlib import suppress

import torch
from transformers import DynamicCache

from reranker.core.backend import Capabilities, PromptTooLong, RerankBackend, ScoringStopped, StopScoring
from reranker.core.model_names import resolve_model, scored_name
from reranker.core.passages import estimated_spans, judge_in_passages
from reranker.core.ranking import Judgement, Progress, Query
from reranker.engine.encoding import EncodedPair, PromptEncoder, common_prefix_length
from reranker.engine.int8 import INT8, quantize_linear_layers
from reranker.engine.loading import load_model, resolve_device, resolve_dtype

KeyValues = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, (key, value) tensors of shape (batch, kv_heads, length, head_dim)."""
_STEMS_KEPT = 8
_QUERIES_KEPT = 2
"""Query prefixes kept across calls: a request served in slices reads its query's key/values from the last one."""
_SHARED_DOCUMENT_TOKENS = 64
"""Documents of a query whose beginnings agree this far (in tokens, past the query) share that beginning's pass."""
_KEPT_PREFIX_TOKENS = 512
"""Longer prefixes are not kept: their key/values would hold too much memory (the 0.6B model, float32: 115 MB)."""


class Qwen3Reranker(RerankBackend):
    """A Qwen3-Reranker loaded once; `score` (or `rerank`) and `rank` (from RerankBackend) are all most callers need.

    model: a hub id or a local folder (default: $RERANKER_MODEL, else Qwen/Qwen3-Reranker-0.6B); `model_path` is
        the same, by the name tutorials use.
    device: "auto" or None (CUDA, then MPS, then CPU), or any torch device; $RERANKER_DEVICE.
    dtype: "auto" (bfloat16 on CUDA, float32 elsewhere), "float32", "bfloat16", "float16", or "int8", the
        approximate CPU mode (engine/int8.py: about 3x float32's speed, scores within a few hundredths);
        $RERANKER_DTYPE. Any dtype but float32 is named in `model_name`, so that its scores are never taken for
        (or cached as) float32's.
    max_length: prompt tokens at most; longer user turns are cut from their end, as the model card does.
    batch_size: documents per forward pass at most (default: as many as `batch_tokens` holds).
    batch_tokens: key/value slots per forward pass; bounds memory (default 1024 on CPU, where small
        batches pad least and run as fast as big ones, 32768 on GPU). A pass holds at most `batch_size`
        documents and at most `batch_tokens` slots, whichever is reached first.
    """

    def __init__(
        self,
        model: str | None = None,
        device: str | None = "auto",
        dtype: str | torch.dtype | None = "auto",
        max_length: int = 8192,
        batch_tokens: int | None = None,
        *,
        model_path: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        if model is not None and model_path is not None and model != model_path:
            raise TypeError("give the model once: model or model_path, not both with different values")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.model_id = resolve_model(model or model_path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.dtype_name = str(self.dtype).removeprefix("torch.")
        self.model_name = scored_name(self.model_id, self.dtype_name)
        started = time.perf_counter()
        int8 = self.dtype == INT8
        self.tokenizer, self.model = load_model(self.model_id, self.device, torch.float32 if int8 else self.dtype)
        self.load_seconds = time.perf_counter() - started
        self.max_length = max_length
        self.batch_tokens = batch_tokens or (1024 if self.device.type == "cpu" else 32768)
        self.encoder = PromptEncoder(self.tokenizer, max_length)
        head = self.model.get_output_embeddings()
        rows = [self.encoder.no_id, self.encoder.yes_id]
        self._no_yes_weight = head.weight[rows].detach().float()
        self._no_yes_bias = head.bias[rows].detach().float() if getattr(head, "bias", None) is not None else None
        self._body = self.model.get_decoder()
        if int8:  # after the yes/no rows above were taken from the float32 weights
            quantize_linear_layers(self._body)
        # transformers 5.2x renamed the decoder's past_key_values to cache; the old name goes in 5.40
        self._cache_arg = "cache" if "cache" in inspect.signature(self._body.forward).parameters else "past_key_values"
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._lock = threading.RLock()  # re-entered by a progress callback that scores in between passes
        self._stems: OrderedDict[tuple[int, ...], KeyValues] = OrderedDict()
        self._recent_prefixes: OrderedDict[tuple[int, ...], KeyValues] = OrderedDict()

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        """Judge several queries' documents in shared forward passes (jobs, CSV batches, concurrent requests); a query
        with passage_tokens has its documents judged as passages (core/passages.py), in the same passes."""
        if any(q.passage_tokens is not None or q.max_passages is not None for q in queries):
            # passages stand for their document only all together: they are not stopped between passes
            return judge_in_passages(queries, lambda plain: self.judge_many(plain, _unstoppable(progress)),
                                     self._spans, self.encoder.user_budget)
        for q in queries:
            _check_text("query", q.query)
            if q.instruction is not None:
                _check_text("instruction", q.instruction)
            if isinstance(q.documents, str):
                raise TypeError("documents must be a list of strings, not one string")
            for i, d in enumerate(q.documents):
                _check_text(f"documents[{i}]", d)
        encoded = [self.encoder.encode(q.query, q.documents, q.instruction, q.document_tokens, q.keep_document_end)
                   for q in queries]
        for q, pairs in zip(queries, encoded):
            too_long = [d for d, pair in zip(q.documents, pairs) if pair.too_long]
            if q.refuse_truncation and too_long:
                raise PromptTooLong(
                    f"a document does not fit the model's limit of {self.max_length:,} prompt tokens with its query "
                    f"and instruction (it starts {too_long[0][:40]!r}); allow truncation, or send it shorter")
        verdicts, complete = self._run(queries, encoded, progress)
        judged = [
            [None if verdict is None else Judgement(verdict[0], verdict[1], len(pair.input_ids), pair.truncated)
             for verdict, pair in zip(group, pairs)]
            for group, pairs in zip(verdicts, encoded)
        ]
        if not complete:
            raise ScoringStopped(judged)
        return judged  # type: ignore[return-value]

    def _spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Each text's plain-text tokens as character spans."""
        return [spans if spans is not None else estimated_spans(text)
                for text, (_, spans) in zip(texts, self.encoder.tokens_and_offsets(texts))]

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("Qwen3 engine", "in this process", in_process=True, yields_between_passes=True)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "device": str(self.device), "dtype": self.dtype_name,
                "max_length": self.max_length, "load_seconds": round(self.load_seconds, 2)}

    # The forward passes.

    def _run(self, queries: Sequence[Query], encoded: list[list[EncodedPair]],
             progress: Progress | None) -> tuple[list[list[tuple[float, float] | None]], bool]:
        """(score, logit) per pair, grouped like `encoded`, and whether every pair was scored: a progress callback
        that raises StopScoring stops the passes there (None for each pair not scored)."""
        prefixes: dict[tuple[int, ...], int] = {}
        stem_lengths: list[int] = []
        rows: list[tuple[int, int, int]] = []  # (group, document, prefix number)
        row_prefix_len: list[int] = []

        def prefix_number(key: tuple[int, ...], stem: list[int]) -> int:
            number = prefixes.setdefault(key, len(prefixes))
            if number == len(stem_lengths):
                stem_lengths.append(max(1, common_prefix_length(stem, key)))
            return number

        for g, (q, pairs) in enumerate(zip(queries, encoded)):
            if not pairs:
                continue
            shared = self.encoder.shared_prefix(q.query, q.instruction)
            length = min(min(common_prefix_length(p.input_ids, shared), len(p.input_ids) - 1) for p in pairs)
            stem = self.encoder.instruction_prefix(q.instruction)
            number = prefix_number(tuple(shared[:length]), stem)
            # Documents that begin like the query's longest one (a "Why?" asks for the document without each of its
            # sentences; pasted pages may share a header) read that beginning from its key/values, computed once.
            anchor = max((p.input_ids for p in pairs), key=len)
            along = [min(common_prefix_length(p.input_ids, anchor), len(p.input_ids) - 1) for p in pairs]
            alike = [a - length >= _SHARED_DOCUMENT_TOKENS for a in along]
            anchored = prefix_number(tuple(anchor[:max(along)]), stem) if sum(alike) >= 2 else None
            for d in range(len(pairs)):
                if anchored is not None and alike[d]:
                    rows.append((g, d, anchored))
                    row_prefix_len.append(along[d])
                else:
                    rows.append((g, d, number))
                    row_prefix_len.append(length)
        results: list[list[tuple[float, float] | None]] = [[None] * len(p) for p in encoded]
        if not rows:
            return results, True
        tails = [encoded[g][d].input_ids[row_prefix_len[i]:] for i, (g, d, _) in enumerate(rows)]
        with self._lock, torch.inference_mode():
            cached = self._prefix_cache([(list(k), s) for k, s in zip(prefixes, stem_lengths)])
            order = sorted(range(len(rows)), key=lambda i: (-len(tails[i]), -row_prefix_len[i], i))
            done = 0
            for members in self._passes(order, tails, row_prefix_len):
                verdicts = self._tail_pass([tails[i] for i in members],
                                           [_first(cached[rows[i][2]], row_prefix_len[i]) for i in members])
                for i, verdict in zip(members, verdicts):
                    g, d, _ = rows[i]
                    results[g][d] = verdict
                done += len(members)
                if progress is not None:
                    try:
                        progress(done, len(rows))
                    except StopScoring:
                        return results, done == len(rows)
        return results, True

    def _passes(self, order: list[int], tails: list[list[int]], prefix_len: list[int]) -> list[list[int]]:
        """`order` cut into runs whose padded key/value slots (rows x (widest prefix + widest tail)) fit the budget,
        of at most `batch_size` rows.

        Sorted by tail length, rows pad little of the part they compute; prefixes of different lengths cost only
        masked attention slots.
        """
        passes: list[list[int]] = []
        current: list[int] = []
        widest_tail = widest_prefix = 0
        for i in order:
            tail, prefix = max(widest_tail, len(tails[i])), max(widest_prefix, prefix_len[i])
            full = self.batch_size is not None and len(current) >= self.batch_size
            if current and (full or (len(current) + 1) * (tail + prefix) > self.batch_tokens):
                passes.append(current)
                current, tail, prefix = [], len(tails[i]), prefix_len[i]
            current.append(i)
            widest_tail, widest_prefix = tail, prefix
        if current:
            passes.append(current)
        return passes

    def _prefix_cache(self, prefixes: list[tuple[list[int], int]]) -> list[KeyValues]:
        """Each (prefix, stem length)'s key/values, its query part run on top of its cached instruction stem (or
        taken from the last few calls' prefixes), the last few kept for the next call."""
        out: list[KeyValues] = [[] for _ in prefixes]
        by_stem: dict[tuple[int, ...], list[int]] = {}
        for n, (ids, stem_length) in enumerate(prefixes):
            kept = self._recent_prefixes.get(tuple(ids))
            if kept is not None:
                self._recent_prefixes.move_to_end(tuple(ids))
                out[n] = kept
            else:
                by_stem.setdefault(tuple(ids[:stem_length]), []).append(n)
        for stem, members in by_stem.items():
            stem_kv = self._stem_kv(stem)
            rest = [prefixes[m][0][len(stem):] for m in members]
            longest_first = sorted(range(len(members)), key=lambda i: -len(rest[i]))
            for chunk in self._passes(longest_first, rest, [len(stem)] * len(members)):
                tails = [rest[i] for i in chunk]
                if not any(tails):
                    for i in chunk:
                        out[members[i]] = stem_kv
                    continue
                cache = _cache_of([kv.expand(len(chunk), -1, -1, -1) for kv in pair] for pair in stem_kv)
                ids = _right_padded(tails, self._pad_id, self.device)
                positions = len(stem) + torch.arange(ids.shape[1], device=self.device).expand(len(chunk), -1)
                self._body(input_ids=ids, position_ids=positions, use_cache=True, **{self._cache_arg: cache})
                layers = _key_values(cache)
                for row, (i, tail) in enumerate(zip(chunk, tails)):
                    end = len(stem) + len(tail)
                    out[members[i]] = [(k[row:row + 1, :, :end], v[row:row + 1, :, :end]) for k, v in layers]
        computed = [n for members in by_stem.values() for n in members
                    if prefixes[n][1] < len(prefixes[n][0]) <= _KEPT_PREFIX_TOKENS]
        for n in computed[-_QUERIES_KEPT:]:  # the last query of a call is the one a sliced request continues
            # a copy, so that the kept prefix does not hold its whole pass's key/values in memory
            self._recent_prefixes[tuple(prefixes[n][0])] = [(k.clone(), v.clone()) for k, v in out[n]]
            if len(self._recent_prefixes) > _QUERIES_KEPT:
                self._recent_prefixes.popitem(last=False)
        return out

    def _stem_kv(self, stem: tuple[int, ...]) -> KeyValues:
        """Key/values of the system prompt + one instruction, kept across calls (a few instructions at most)."""
        if stem in self._stems:
            self._stems.move_to_end(stem)
            return self._stems[stem]
        ids = torch.tensor([list(stem)], dtype=torch.long, device=self.device)
        cache = DynamicCache()
        self._body(input_ids=ids, use_cache=True, **{self._cache_arg: cache})
        self._stems[stem] = _key_values(cache)
        if len(self._stems) > _STEMS_KEPT:
            self._stems.popitem(last=False)
        return self._stems[stem]

    def _tail_pass(self, tails: list[list[int]], prefixes: list[KeyValues]) -> list[tuple[float, float]]:
        lengths = [p[0][0].shape[2] for p in prefixes]
        widest = max(lengths)
        cache = _cache_of(
            [torch.cat([_pad_seq(p[layer][0], widest) for p in prefixes]),
             torch.cat([_pad_seq(p[layer][1], widest) for p in prefixes])]
            for layer in range(len(prefixes[0])))
        ids = _right_padded(tails, self._pad_id, self.device)
        width = ids.shape[1]
        positions = torch.tensor(lengths, device=self.device)[:, None] + torch.arange(width, device=self.device)
        mask = None
        if min(lengths) != widest:
            slots = torch.arange(widest + width, device=self.device)[None, :]
            prefix_len = torch.tensor(lengths, device=self.device)[:, None]
            tail_len = torch.tensor([len(t) for t in tails], device=self.device)[:, None]
            mask = ((slots < prefix_len) | ((slots >= widest) & (slots < widest + tail_len))).long()
        hidden = self._body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                            **{self._cache_arg: cache}).last_hidden_state
        last = torch.tensor([len(t) - 1 for t in tails], device=self.device)
        final = hidden[torch.arange(len(tails), device=self.device), last].float()
        no_yes = final @ self._no_yes_weight.T
        if self._no_yes_bias is not None:
            no_yes = no_yes + self._no_yes_bias
        scores = torch.log_softmax(no_yes, dim=1)[:, 1].exp()
        logits = no_yes[:, 1] - no_yes[:, 0]
        return list(zip(scores.tolist(), logits.tolist()))


def _first(prefix: KeyValues, length: int) -> KeyValues:
    """The key/values of a prefix's first `length` positions (views, not copies)."""
    if prefix[0][0].shape[2] == length:
        return prefix
    return [(k[:, :, :length], v[:, :, :length]) for k, v in prefix]


def _unstoppable(progress: Progress | None) -> Progress | None:
    """`progress`, its StopScoring ignored."""
    if progress is None:
        return None

    def told(done: int, total: int) -> None:
        with suppress(StopScoring):
            progress(done, total)

    return told


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")


def _right_padded(seqs: list[list[int]], pad_id: int, device: torch.device) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [pad_id] * (width - len(s)) for s in seqs], dtype=torch.long, device=device)


def _pad_seq(t: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - t.shape[2]
    return t if missing == 0 else torch.nn.functional.pad(t, (0, 0, 0, missing))


def _cache_of(layers: Iterable[Sequence[torch.Tensor]]) -> DynamicCache:
    """A transformers DynamicCache holding these (key, value) pairs, one per layer (any version >= 4.51)."""
    cache = DynamicCache()
    for n, (keys, values) in enumerate(layers):
        cache.update(keys, values, n)
    return cache


def _key_values(cache: DynamicCache) -> KeyValues:
    """The cache's (key, value) pairs, one per layer, across the layouts of transformers 4.51 to 5.x."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))
