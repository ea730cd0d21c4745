"""`python -m reranker batch`: a file of pairs scored on Ray Data, on this machine or a cluster.

read (on this process, bad rows reported and left out) -> Ray Data `map_batches` through PairScorer actors, each
holding one backend (the model in the actor's process, or a remote server), rows sorted by instruction and query
so a batch holds whole queries and the engine reuses their prefixes -> ranks within each query -> one output file,
written whole or not at all.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from reranker.backends import open_backend
from reranker.core.addresses import is_server
from reranker.core.backend import Capabilities, RerankBackend
from reranker.core.calibrated import CalibratedBackend, calibration_from
from reranker.core.environment import DTYPE
from reranker.core.failures import RerankerError
from reranker.core.model_names import resolve_model, scored_name
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import Judgement, Passage, Progress, Query, in_pair_order, queries_of, rank_each
from reranker.formats.exports import EXPORT_COLUMNS, PASSAGE_COLUMNS, label_value, with_input_columns
from reranker.formats.pair_files import ROW, PairTable, file_format, read_pairs, write_table


class BatchFailed(RuntimeError):
    """The run could not score every row; nothing was written. The message says what is missing and why."""


@dataclass(frozen=True)
class BatchOptions:
    backend: str | None = None
    """A hub id or folder (the model runs in each worker), or a server's URL; None: $RERANKER_MODEL, else the
    default model (settled here, so every worker of a cluster loads the same one)."""
    key: str | None = None
    instruction: str | None = None
    """For rows without an instruction of their own; blank: the default."""
    ray_address: str | None = None
    """Join this Ray cluster; None: the Ray this process already started, else a new local one."""
    workers: int = 1
    gpus_per_worker: float = 0.0
    rows_per_batch: int = 256
    passage_tokens: int | None = None
    """Read each document as passages of at most this many tokens (core/passages.py)."""
    max_passages: int | None = None
    dtype: str | None = None
    """The engine's dtype in each worker ("int8": the approximate CPU mode); None: $RERANKER_DTYPE, else auto."""
    calibration: dict | None = None
    """A CAL.json's document (core/calibrated.py): each worker's scores read through it; None: the model's own."""


class PairScorer:
    """A Ray Data actor: opens its backend once, then judges batches of rows grouped by (instruction, query)."""

    def __init__(self, backend: str | None, key: str | None, threads: int | None = None,
                 passage_tokens: int | None = None, max_passages: int | None = None,
                 dtype: str | None = None, calibration: dict | None = None) -> None:
        self.passages = {"passage_tokens": passage_tokens, "max_passages": max_passages}
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.backend = open_backend(backend, key, dtype=dtype)
        if calibration is not None:
            self.backend = CalibratedBackend(self.backend, calibration_from(calibration))

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        groups = queries_of(zip(batch["query"], batch["document"], batch["instruction"], strict=True))
        judged = in_pair_order(groups, self.backend.judge_many([replace(q, **self.passages) for q, _ in groups]))
        out = pd.DataFrame({ROW: batch[ROW].to_numpy()})
        best = [j.best_passage() for j in judged]
        for name in ("score", "logit", "tokens", "truncated"):
            out[name] = [getattr(judgement, name) for judgement in judged]
        out["passage_start"] = [p.start if p else None for p in best]
        out["passage_end"] = [p.end if p else None for p in best]
        out["model"] = self.backend.model_name
        return out


def run_batch_file(source: str, output: str, options: BatchOptions,
                   report: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> pd.DataFrame:
    """Score every usable row of `source` and write `output`; returns the written table. Raises TableError for a
    file that cannot be used at all, BatchFailed when scoring fails part-way (then nothing is written)."""
    options = replace(options, backend=options.backend or resolve_model(None))
    if options.workers < 1 or options.gpus_per_worker < 0:
        raise BatchFailed("--workers must be at least 1 and --gpus-per-worker at least 0")
    file_format(output)
    if not Path(output).resolve().parent.is_dir():
        raise BatchFailed(f"the folder of {output} does not exist; nothing was scored")
    if is_server(options.backend):
        try:
            open_backend(options.backend, options.key)  # a wrong address or key is told now, before Ray starts
        except RerankerError as e:
            raise BatchFailed(f"nothing was written: {e}") from None
    table = read_pairs(source)
    for problem in table.problems:
        report(f"left out: {problem}")
    if table.rows.empty:
        raise BatchFailed(f"{source}: no usable row to score ({len(table.problems)} left out)")
    work = _scoring_rows(table, options.instruction)
    report(f"scoring {len(work):,} pairs ({len(table.problems):,} rows left out) on "
           f"{options.workers} worker{'s' if options.workers > 1 else ''}")
    started = time.perf_counter()
    scored = score_on_ray(work, options)
    missing = len(work) - scored[ROW].nunique()
    if missing:
        raise BatchFailed(f"{missing:,} of {len(work):,} pairs came back without a score; nothing was written")
    result = _ranked(table, work, scored)
    try:
        write_table(result, output)
    except (OSError, ValueError, ImportError) as e:  # a full disk, no permission, a type Parquet cannot hold
        raise BatchFailed(f"every pair was scored, but {output} could not be written: {type(e).__name__}: "
                          f"{e}") from None
    seconds = time.perf_counter() - started
    report(f"wrote {len(result):,} rows to {output} in {seconds:.1f} s ({len(result) / seconds:.1f} pairs/s)")
    return result


def _scoring_rows(table: PairTable, instruction: str | None) -> pd.DataFrame:
    """What the workers need, sorted so each (instruction, query) is contiguous; the instruction resolved."""
    roles = table.columns
    own = table.rows[roles["instruction"]] if roles["instruction"] else pd.Series([None] * len(table.rows))
    work = pd.DataFrame({
        ROW: table.rows[ROW].to_numpy(),
        "query": table.rows[roles["query"]].to_numpy(),
        "document": table.rows[roles["document"]].to_numpy(),
        "instruction": [resolve_instruction(i if isinstance(i, str) and i.strip() else instruction) for i in own],
    })
    return work.sort_values(["instruction", "query", ROW], kind="stable").reset_index(drop=True)


def score_on_ray(work: pd.DataFrame, options: BatchOptions) -> pd.DataFrame:
    """`work`'s rows (ROW, query, document, instruction) scored on Ray Data: ROW with score, logit, tokens,
    truncated and model; BatchFailed when Ray cannot start or a worker fails."""
    import ray

    try:
        if options.ray_address is not None:
            ray.init(address=options.ray_address, ignore_reinit_error=True, log_to_driver=False)
        elif not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {options.ray_address}" if options.ray_address else "a local Ray"
        raise BatchFailed(f"could not start or join {where}: {e}; nothing was scored") from None
    step = options.rows_per_batch
    dataset = ray.data.from_pandas([work.iloc[i:i + step] for i in range(0, len(work), step)])
    cpus, threads = _cpus_per_worker(options)
    scored = dataset.map_batches(
        PairScorer, fn_constructor_kwargs={"backend": options.backend, "key": options.key, "threads": threads,
                                           "passage_tokens": options.passage_tokens,
                                           "max_passages": options.max_passages, "dtype": options.dtype,
                                           "calibration": options.calibration},
        batch_size=step, batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=options.workers),
        num_gpus=options.gpus_per_worker or None, num_cpus=cpus)
    try:
        return scored.to_pandas()
    except Exception as e:  # noqa: BLE001 - a worker's failure arrives wrapped by Ray; say it plainly
        raise BatchFailed(f"scoring failed, nothing was written: {_worker_error(e)}") from None


def _worker_error(error: BaseException) -> str:
    """The worker's own error from under Ray's wrapping: the traceback's last line, `module.Error: message`."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    name, _, message = last.partition(": ")
    return f"{name.rsplit('.', 1)[-1]}: {message}" if message and " " not in name else last


def _cpus_per_worker(options: BatchOptions) -> tuple[float, int | None]:
    """(CPUs Ray reserves for a worker, torch threads it runs). One CPU is left to Ray Data's own tasks, or a
    worker holding them all would wait for them forever; on a CPU model a worker still computes on its share of
    the cores."""
    import ray

    if is_server(options.backend):
        return 0.25, None  # it waits on the server
    if options.gpus_per_worker:
        return 1, None
    nodes = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
    cores = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1) // nodes)
    per_node = max(1, -(-options.workers // nodes))
    return max(1, (cores - 1) // per_node), max(1, cores // per_node)


def _ranked(table: PairTable, work: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """The input's rows in input order with the export columns first (rank within each query, best first by
    logit, ties in input order), then the input's other columns."""
    merged = work.merge(scored, on=ROW).sort_values(ROW, kind="stable").reset_index(drop=True)
    merged["rank"] = _ranks(merged)
    merged["index"] = merged[ROW]
    roles = table.columns
    source = table.rows.set_index(ROW).loc[merged[ROW]].reset_index(drop=True)
    if roles["label"]:
        merged["label"] = pd.Series([label_value(v) for v in source[roles["label"]]], dtype=object)
    if merged["passage_start"].notna().any():
        merged["passage"] = [d[int(a):int(b)] if pd.notna(a) else None
                             for d, a, b in zip(merged["document"], merged["passage_start"], merged["passage_end"])]
    else:
        merged = merged.drop(columns=["passage_start", "passage_end"])
    columns = [c for c in (*EXPORT_COLUMNS, *PASSAGE_COLUMNS) if c in merged.columns]
    used = {roles[r] for r in ("query", "document", "label", "instruction") if roles[r]}
    return with_input_columns(merged[columns], source, used)


def _ranks(merged: pd.DataFrame) -> list[int]:
    """Each row's rank within its (instruction, query), as every ranking is made (rank_judgements)."""
    groups = queries_of(zip(merged["query"], merged["document"], merged["instruction"], strict=True))
    scores, logits = merged["score"].tolist(), merged["logit"].tolist()
    verdicts = [[Judgement(scores[p], logits[p], None, None) for p in positions] for _, positions in groups]
    ranks = [0] * len(merged)
    for (_, positions), ranked in zip(groups, rank_each([q for q, _ in groups], verdicts), strict=True):
        for document in ranked:
            ranks[positions[document.index]] = document.rank
    return ranks


class RayBackend(RerankBackend):
    """Pairs scored on Ray Data as the batch command scores them, behind the backend interface (the evaluate
    command's `--ray`): one judge_many starts the workers, each loading the backend `options` names. The queries of
    one call share their passage options (the first query's)."""

    def __init__(self, options: BatchOptions) -> None:
        self.options = replace(options, backend=options.backend or resolve_model(None))
        dtype = self.options.dtype or DTYPE.read()
        self.model_name = (scored_name(self.options.backend, dtype) if not is_server(self.options.backend)
                           else "(on a server)")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("Ray Data", f"Ray at {self.options.ray_address or 'a local Ray'}")

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        rows = [(q.query, d, resolve_instruction(q.instruction)) for q in queries for d in q.documents]
        work = pd.DataFrame(rows, columns=["query", "document", "instruction"])
        work.insert(0, ROW, range(len(work)))
        first = queries[0] if queries else Query("", [])
        options = replace(self.options, passage_tokens=first.passage_tokens, max_passages=first.max_passages)
        scored = score_on_ray(work, options).set_index(ROW).sort_index()
        judged = [Judgement(float(r.score), float(r.logit), None if pd.isna(r.tokens) else int(r.tokens),
                            None if pd.isna(r.truncated) else bool(r.truncated),
                            None if pd.isna(r.passage_start) else (Passage(int(r.passage_start), int(r.passage_end),
                                                                           float(r.score), float(r.logit)),))
                  for r in scored.itertuples()]
        if progress is not None:
            progress(len(judged), len(judged))
        out, start = [], 0
        for q in queries:
            out.append(judged[start:start + len(q.documents)])
            start += len(q.documents)
        return out
