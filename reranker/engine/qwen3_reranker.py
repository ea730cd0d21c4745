"""Qwen3Reranker: the score of the model card, computed without its waste.

Three things make it fast, none of which changes a score:
- only the final position's hidden state meets the LM head, and only its "yes" and "no" rows (`YesNoHead`);
- the prompt part every document of a query shares (the query prefix: system + instruction + query) runs
  once, and its key/value cache is reused by each document; the part every query under one instruction
  shares (the instruction prefix: system + instruction) is kept across calls, so many small requests pay
  for little more than their own query and documents; documents that begin like the query's longest one
  read that shared beginning from its key/values too (`_plan_call` decides who reads what);
- documents go in length-sorted forward passes under a token budget, so padding is rare.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from transformers import DynamicCache

from reranker.core.backend import Capabilities, RerankBackend, ScoringStopped, goes_on, unstoppable
from reranker.core.failures import PromptTooLong
from reranker.core.model_names import resolve_model, scored_name
from reranker.core.passages import estimated_spans, judge_in_passages
from reranker.core.ranking import Judgement, Progress, Query
from reranker.engine.encoding import EncodedPair, PromptEncoder, common_prefix_length
from reranker.engine.loading import load_model, resolve_device, resolve_dtype
from reranker.engine.yes_no_head import Verdict, YesNoHead

KeyValues = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, (key, value) tensors of shape (batch, kv_heads, length, head_dim)."""
_INSTRUCTION_PREFIXES_KEPT = 8
"""System + instruction prefixes whose key/values are kept across calls (one per instruction in use)."""
_RECENT_PREFIXES_KEPT = 2
"""Longer prefixes (a query's, a shared document beginning's) kept across calls: a request served in slices reads
its query's key/values from the last one."""
_SHARED_DOCUMENT_TOKENS = 64
"""Documents of a query whose beginnings agree this far (in tokens, past the query) share that beginning's pass."""
_KEPT_PREFIX_TOKENS = 512
"""Longer prefixes are not kept: their key/values would hold too much memory (the 0.6B model, float32: 115 MB)."""


class Qwen3Reranker(RerankBackend):
    """A Qwen3-Reranker loaded once; `score` (or `rerank`) and `rank` (from RerankBackend) are all most callers need.

    model: a hub id or a local folder (default: $RERANKER_MODEL, else Qwen/Qwen3-Reranker-0.6B); `model_path` is
        the same, by the name tutorials use.
    device: "auto" or None (CUDA, then MPS, then CPU), or any torch device; $RERANKER_DEVICE.
    dtype: "auto" (bfloat16 on CUDA, float32 elsewhere), "float32", "bfloat16", "float16", "int8", the
        approximate CPU mode (engine/int8.py: about 3x float32's speed, scores within a few hundredths), or "fast":
        on a CPU bfloat16 where it has AVX512-BF16 or AMX, else int8 (engine/loading.fast_dtype); $RERANKER_DTYPE.
        Any dtype but float32 is named in `model_name` (fast by the one it picked), so that its scores are never
        taken for (or cached as) float32's.
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
        self.tokenizer, self.model = load_model(self.model_id, self.device, self.dtype)
        self.load_seconds = time.perf_counter() - started
        self.max_length = max_length
        self.batch_tokens = batch_tokens or (1024 if self.device.type == "cpu" else 32768)
        self.encoder = PromptEncoder(self.tokenizer, max_length)
        self.yes_no_head = YesNoHead(self.model, self.tokenizer)
        self._decoder = self.model.get_decoder()
        # transformers 5.2x renamed the decoder's past_key_values to cache; the old name goes in 5.40
        decoder_parameters = inspect.signature(self._decoder.forward).parameters
        self._cache_arg = "cache" if "cache" in decoder_parameters else "past_key_values"
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._lock = threading.RLock()  # re-entered by a progress callback that scores in between passes
        self._instruction_prefix_cache: OrderedDict[tuple[int, ...], KeyValues] = OrderedDict()
        self._recent_prefix_cache: OrderedDict[tuple[int, ...], KeyValues] = OrderedDict()

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        """Judge several queries' documents in shared forward passes (jobs, CSV batches, concurrent requests); a query
        with passage_tokens has its documents judged as passages (core/passages.py), in the same passes."""
        if any(q.passage_tokens is not None or q.max_passages is not None for q in queries):
            # passages stand for their document only all together: they are not stopped between passes
            return judge_in_passages(queries, lambda plain: self.judge_many(plain, unstoppable(progress)),
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
             progress: Progress | None) -> tuple[list[list[Verdict | None]], bool]:
        """(score, logit) per pair, grouped like `encoded`, and whether every pair was scored: a progress callback
        that raises StopScoring stops the passes there (None for each pair not scored)."""
        plan = _plan_call(self.encoder, queries, encoded)
        verdicts: list[list[Verdict | None]] = [[None] * len(pairs) for pairs in encoded]
        if not plan.rows:
            return verdicts, True
        total = len(plan.rows)
        with self._lock, torch.inference_mode():
            prefix_key_values = self._prefix_key_values(plan.prefixes)
            done = 0
            tails, prefix_lengths = [r.tail for r in plan.rows], [r.prefix_length for r in plan.rows]
            for members in self._passes(plan.longest_tails_first(), tails, prefix_lengths):
                rows = [plan.rows[i] for i in members]
                read = [_first_positions(prefix_key_values[r.prefix], r.prefix_length) for r in rows]
                for row, verdict in zip(rows, self._tail_pass([r.tail for r in rows], read)):
                    verdicts[row.query][row.document] = verdict
                done += len(rows)
                if progress is not None and not goes_on(progress, done, total):
                    return verdicts, done == total
        return verdicts, True

    def _passes(self, order: list[int], tails: Sequence[Sequence[int]],
                prefix_lengths: Sequence[int]) -> list[list[int]]:
        """`order` cut into runs whose padded key/value slots (rows x (widest prefix + widest tail)) fit the budget,
        of at most `batch_size` rows.

        Sorted by tail length, rows pad little of the part they compute; prefixes of different lengths cost only
        masked attention slots.
        """
        passes: list[list[int]] = []
        current: list[int] = []
        widest_tail = widest_prefix = 0
        for i in order:
            tail, prefix = max(widest_tail, len(tails[i])), max(widest_prefix, prefix_lengths[i])
            full = self.batch_size is not None and len(current) >= self.batch_size
            if current and (full or (len(current) + 1) * (tail + prefix) > self.batch_tokens):
                passes.append(current)
                current, tail, prefix = [], len(tails[i]), prefix_lengths[i]
            current.append(i)
            widest_tail, widest_prefix = tail, prefix
        if current:
            passes.append(current)
        return passes

    def _prefix_key_values(self, prefixes: list[_Prefix]) -> list[KeyValues]:
        """Each prefix's key/values: kept from one of the last few calls, or its part past the instruction run on
        top of that instruction's cached key/values (and then kept, the last few, for the next call)."""
        out: list[KeyValues] = [[] for _ in prefixes]
        by_instruction: dict[tuple[int, ...], list[int]] = {}
        for n, prefix in enumerate(prefixes):
            kept = self._recent_prefix_cache.get(prefix.ids)
            if kept is not None:
                self._recent_prefix_cache.move_to_end(prefix.ids)
                out[n] = kept
            else:
                by_instruction.setdefault(prefix.ids[:prefix.instruction_length], []).append(n)
        for instruction_ids, members in by_instruction.items():
            rests = [prefixes[m].ids[len(instruction_ids):] for m in members]
            for m, key_values in zip(members, self._run_on_instruction_prefix(instruction_ids, rests)):
                out[m] = key_values
        computed = [n for members in by_instruction.values() for n in members]
        self._keep_recent([(prefixes[n], out[n]) for n in computed])
        return out

    def _run_on_instruction_prefix(self, instruction_ids: tuple[int, ...],
                                   rests: list[tuple[int, ...]]) -> list[KeyValues]:
        """The key/values of `instruction_ids` followed by each of `rests`, the rests run in passes on top of the
        instruction prefix's cached key/values."""
        base = self._instruction_prefix_key_values(instruction_ids)
        out: list[KeyValues] = [base] * len(rests)  # what an empty rest reads
        longest_first = sorted(range(len(rests)), key=lambda i: -len(rests[i]))
        for chunk in self._passes(longest_first, rests, [len(instruction_ids)] * len(rests)):
            tails = [list(rests[i]) for i in chunk]
            if not any(tails):
                continue
            cache = _cache_of([kv.expand(len(chunk), -1, -1, -1) for kv in pair] for pair in base)
            ids = _right_padded(tails, self._pad_id, self.device)
            positions = len(instruction_ids) + torch.arange(ids.shape[1], device=self.device).expand(len(chunk), -1)
            self._decoder(input_ids=ids, position_ids=positions, use_cache=True, **{self._cache_arg: cache})
            layers = _key_values(cache)
            for row, (i, tail) in enumerate(zip(chunk, tails)):
                end = len(instruction_ids) + len(tail)
                out[i] = [(k[row:row + 1, :, :end], v[row:row + 1, :, :end]) for k, v in layers]
        return out

    def _keep_recent(self, computed: list[tuple[_Prefix, KeyValues]]) -> None:
        """Keep the last few prefixes this call computed for the next call (those longer than their instruction and
        short enough to hold): the last query of a call is the one a sliced request continues."""
        worth_keeping = [(prefix, key_values) for prefix, key_values in computed
                         if prefix.instruction_length < len(prefix.ids) <= _KEPT_PREFIX_TOKENS]
        for prefix, key_values in worth_keeping[-_RECENT_PREFIXES_KEPT:]:
            # a copy, so that the kept prefix does not hold its whole pass's key/values in memory
            self._recent_prefix_cache[prefix.ids] = [(k.clone(), v.clone()) for k, v in key_values]
            if len(self._recent_prefix_cache) > _RECENT_PREFIXES_KEPT:
                self._recent_prefix_cache.popitem(last=False)

    def _instruction_prefix_key_values(self, ids: tuple[int, ...]) -> KeyValues:
        """Key/values of the system prompt + one instruction, kept across calls (a few instructions at most)."""
        if ids in self._instruction_prefix_cache:
            self._instruction_prefix_cache.move_to_end(ids)
            return self._instruction_prefix_cache[ids]
        cache = DynamicCache()
        self._decoder(input_ids=torch.tensor([list(ids)], dtype=torch.long, device=self.device), use_cache=True,
                      **{self._cache_arg: cache})
        self._instruction_prefix_cache[ids] = _key_values(cache)
        if len(self._instruction_prefix_cache) > _INSTRUCTION_PREFIXES_KEPT:
            self._instruction_prefix_cache.popitem(last=False)
        return self._instruction_prefix_cache[ids]

    def _tail_pass(self, tails: list[list[int]], prefixes: list[KeyValues]) -> list[Verdict]:
        """One forward pass over the tails, each on top of its prefix's key/values (prefixes of different lengths
        padded and masked out); the (score, logit) of each."""
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
        hidden = self._decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                               **{self._cache_arg: cache}).last_hidden_state
        last = torch.tensor([len(t) - 1 for t in tails], device=self.device)
        return self.yes_no_head(hidden[torch.arange(len(tails), device=self.device), last])


# Which prompt reads which prefix: planned before any forward pass, from the token ids alone.


@dataclass(frozen=True)
class _Prefix:
    """A prompt beginning whose key/values a call computes once (or finds kept) for all the prompts that read it."""

    ids: tuple[int, ...]
    instruction_length: int
    """How many of its first ids are the system + instruction prefix (at least 1), whose key/values are kept
    across calls: the rest is computed on top of them."""


@dataclass(frozen=True)
class _Row:
    """One prompt of a call: its first `prefix_length` positions read from a prefix's key/values, its tail run."""

    query: int
    document: int
    prefix: int
    """Index of the prefix it reads in `_CallPlan.prefixes`."""
    prefix_length: int
    tail: list[int]
    """The prompt's ids past `prefix_length`: at least its last one, whose hidden state meets the head."""


@dataclass(frozen=True)
class _CallPlan:
    prefixes: list[_Prefix]
    """Distinct prefixes, in the order their queries come (a query's own before its shared document beginning)."""
    rows: list[_Row]

    def longest_tails_first(self) -> list[int]:
        """Row indices by tail length, then prefix length, longest first: neighbours in a pass pad little."""
        return sorted(range(len(self.rows)),
                      key=lambda i: (-len(self.rows[i].tail), -self.rows[i].prefix_length, i))


class _QueryPrefixes(NamedTuple):
    """Where one query's prompts begin to be computed."""

    prefixes: list[tuple[int, ...]]
    """The query prefix (what all its prompts share: system + instruction + query); then, when at least two documents
    begin alike, the longest prompt less its last id."""
    reads: list[tuple[int, int]]
    """Per prompt, (which of `prefixes` it reads, how many of its first ids)."""


def _query_prefixes(prompts: Sequence[Sequence[int]], query_prefix: Sequence[int]) -> _QueryPrefixes:
    """The prefixes one query's prompts (at least one) read. Every prompt keeps at least its last id to compute."""
    query_prefix_length = min(min(common_prefix_length(p, query_prefix), len(p) - 1) for p in prompts)
    query_only = _QueryPrefixes([tuple(query_prefix[:query_prefix_length])], [(0, query_prefix_length)] * len(prompts))
    # Documents that begin like the query's longest one (a "Why?" asks for the document without each of its
    # sentences; pasted pages may share a header) read that beginning from its key/values, computed once.
    longest = max(prompts, key=len)
    shared_with_longest = [min(common_prefix_length(p, longest), len(p) - 1) for p in prompts]
    begins_like_longest = [n - query_prefix_length >= _SHARED_DOCUMENT_TOKENS for n in shared_with_longest]
    if sum(begins_like_longest) < 2:
        return query_only
    reads = [(1, n) if alike else (0, query_prefix_length)
             for n, alike in zip(shared_with_longest, begins_like_longest)]
    return _QueryPrefixes([*query_only.prefixes, tuple(longest[:max(shared_with_longest)])], reads)


def _plan_call(encoder: PromptEncoder, queries: Sequence[Query], encoded: list[list[EncodedPair]]) -> _CallPlan:
    """Every prompt of a call as a row reading some prefix's key/values; a prefix several queries share (the same
    query and instruction in two requests merged into one call) is computed once."""
    numbers: dict[tuple[int, ...], int] = {}
    prefixes: list[_Prefix] = []
    rows: list[_Row] = []
    for q, (query, pairs) in enumerate(zip(queries, encoded)):
        if not pairs:
            continue
        prompts = [pair.input_ids for pair in pairs]
        planned = _query_prefixes(prompts, encoder.shared_prefix(query.query, query.instruction))
        instruction_prefix = encoder.instruction_prefix(query.instruction)
        for ids in planned.prefixes:
            if ids not in numbers:
                numbers[ids] = len(prefixes)
                prefixes.append(_Prefix(ids, max(1, common_prefix_length(instruction_prefix, ids))))
        rows += [_Row(q, d, numbers[planned.prefixes[which]], length, prompts[d][length:])
                 for d, (which, length) in enumerate(planned.reads)]
    return _CallPlan(prefixes, rows)


def _first_positions(key_values: KeyValues, length: int) -> KeyValues:
    """The key/values of a prefix's first `length` positions (views, not copies)."""
    if key_values[0][0].shape[2] == length:
        return key_values
    return [(k[:, :, :length], v[:, :, :length]) for k, v in key_values]


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
