"""The sidecar's operations, free of HTTP: rerank, rerank several queries, and create / follow / cancel / retry
a job. Each takes a request body (or plain values) and answers with a response body, or raises one of
`reranker.sidecar.errors`; the routes only translate HTTP to these calls and back.
"""

from __future__ import annotations

import asyncio

from reranker.core.failures import Conflict, InvalidField, NotFound, ServerFailed
from reranker.core.passages import check_passage_options
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import Judgement, Query, RankedDocument, queries_of, rank_each, total_tokens
from reranker.formats.columns import COLUMN_FIELDS, guess_columns
from reranker.formats.exports import export_csv, export_frame, export_record, with_input_columns
from reranker.formats.tables import pairs_from_table, read_table, safe_csv_bytes
from reranker.sidecar import limits
from reranker.sidecar.job_store import JobRecord, NewPair, ScoredQuery
from reranker.sidecar.runtime import Runtime
from reranker.sidecar.schemas import (
    JobCreated,
    JobItem,
    JobProgress,
    JobQueryResults,
    JobResults,
    JobStatus,
    MultiQueryRerankRequest,
    MultiQueryRerankResponse,
    RankedItem,
    RerankQueriesRequest,
    usage_of,
)


class SidecarService:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.store = runtime.store

    @property
    def model_name(self) -> str:
        return self.runtime.model_name

    def load_model(self, name: str) -> dict[str, object]:
        self.runtime.extra_models.start(name)
        return {"extra_models": self.runtime.extra_models.states()}

    def answering(self, model: str | None) -> str:
        """The model that answers a request naming `model` (one of the extra models, else the sidecar's own)."""
        return self.runtime.answering(model)

    def health(self) -> dict[str, object]:
        """`status` (ok, loading or failed) with the model, device and dtype, or why it failed to load."""
        return self.runtime.health()

    def metrics_text(self) -> bytes:
        """The Prometheus exposition, with the queue and job gauges read now."""
        runtime = self.runtime
        return runtime.metrics.render(runtime.queue_depth, self.store.counts, runtime.ready)

    # Scoring, answered while the client waits.

    async def judge(self, queries: list[Query], several_queries: bool = False,
                    model: str | None = None) -> list[list[Judgement]]:
        """Each query's documents judged, in input order, once the request is within the limits, by the extra
        model `model` names (else the sidecar's own: `answering(model)` says which); what every rerank dialect is
        built on."""
        limits.check_interactive(self.settings, queries, several_queries)
        try:
            return await self.runtime.judge(queries, model)
        except (NotFound, Conflict) as e:  # a server behind this gateway spoke of its own things: the gateway failed
            raise ServerFailed(str(e)) from None

    async def rank(self, queries: list[Query], top_n: int | None = None, several_queries: bool = False,
                   model: str | None = None) -> tuple[list[list[RankedDocument]], int | None]:
        """Each query's documents best first, cut to top_n, and the prompt tokens read (None when the backend does
        not count them): what every rerank dialect answers from."""
        verdicts = await self.judge(queries, several_queries, model)
        return rank_each(queries, verdicts, top_n), total_tokens(j for group in verdicts for j in group)

    async def rerank_queries(self, body: RerankQueriesRequest) -> MultiQueryRerankResponse:
        queries = [Query(q, d, body.instruction, body.document_tokens, body.keep_document_end, body.refuse_truncation,
                         body.passage_tokens, body.max_passages) for q, d in zip(body.queries, body.texts())]
        ranked, tokens = await self.rank(queries, body.top_n, several_queries=True, model=body.model)
        return MultiQueryRerankResponse(model=self.answering(body.model), usage=usage_of(tokens),
                                        results=[[RankedItem(**r.record()) for r in query] for query in ranked])

    # Jobs: accepted now, scored in the background, kept in the store.

    async def create_json_job(self, body: MultiQueryRerankRequest) -> JobCreated:
        texts = body.texts()
        limits.check_job(self.settings, sum(len(d) for d in texts))
        limits.check_queries(self.settings, [Query(q, d, body.instruction) for q, d in zip(body.queries, texts)],
                             several_queries=True)
        queries = [(q, body.instruction) for q in body.queries]
        pairs = [NewPair(qnum, d, text) for qnum, docs in enumerate(texts) for d, text in enumerate(docs)]
        _check_passages(body.passage_tokens, body.max_passages)
        job = await asyncio.to_thread(self.store.create, "json", queries, pairs, body.top_n,
                                      passage_tokens=body.passage_tokens, max_passages=body.max_passages)
        return self._accepted(job)

    async def create_table_job(self, filename: str, data: bytes, columns: dict[str, str | None],
                               instruction: str | None = None, passage_tokens: int | None = None,
                               max_passages: int | None = None) -> JobCreated:
        """A job over an uploaded CSV or TSV; `columns` names the column of some roles (None: no such column),
        the others are guessed from the header; `instruction` is for rows without one of their own; with
        passage_tokens each document is judged by its best passage."""
        if instruction is not None:
            limits.check_text(self.settings, "instruction", instruction)
        _check_passages(passage_tokens, max_passages)
        mapping, queries, pairs = await asyncio.to_thread(self._pairs_from_table, data, filename, columns, instruction)
        job = await asyncio.to_thread(self.store.create, "csv", queries, pairs, None, filename, data, mapping,
                                      passage_tokens, max_passages)
        return self._accepted(job)

    def jobs(self, limit: int) -> list[JobStatus]:
        return [job_status(job) for job in self.store.recent(limit)]

    def job(self, job_id: str) -> JobStatus:
        return job_status(self._job(job_id))

    def cancel(self, job_id: str) -> JobStatus:
        job = self._job(job_id)
        if job.status in ("done", "failed"):
            raise Conflict(f"job {job_id} has already finished ({job.status}); there is nothing to cancel")
        return job_status(self.store.cancel(job_id) or job)

    def retry(self, job_id: str) -> JobStatus:
        """The pairs it had scored are kept; only the rest are scored."""
        job = self._job(job_id)
        if job.status not in ("failed", "cancelled"):
            raise Conflict(f"job {job_id} is {job.status}; only a failed or cancelled job can be retried")
        job = self.store.requeue(job_id) or job
        self.runtime.wake_jobs()
        return job_status(job)

    def results(self, job_id: str) -> JobResults:
        job, scored = self._finished(job_id)
        return JobResults(id=job.id, status=job.status, queries=[
            JobQueryResults(query=sq.query, instruction=resolve_instruction(sq.instruction), results=[
                JobItem(**r.record(), row=sq.rows[r.index], label=sq.labels[r.index]) for r in sq.ranked])
            for sq in scored])

    def results_csv(self, job_id: str) -> bytes:
        """The job's pairs in the export schema (reranker.formats.exports). A table job's rows keep the upload's
        order, `index` being the row (from 0), with the upload's other columns after; a JSON job's are best first per
        query."""
        job, scored = self._finished(job_id)
        table = job.kind == "csv"
        records = [export_record(r, sq.query, sq.instruction, self.model_name, sq.labels[r.index],
                                 index=sq.rows[r.index] if table else None)
                   for sq in scored for r in sq.ranked]
        if not table:
            return export_csv(records)
        frame = export_frame(sorted(records, key=lambda r: r["index"]))
        upload = read_table(self.store.upload(job.id) or b"", job.filename or "", max_bytes=1 << 62)
        used = {name for name in (job.columns or {}).values() if name}
        return safe_csv_bytes(with_input_columns(frame, upload.iloc[frame["index"]], used))

    def _accepted(self, job: JobRecord) -> JobCreated:
        self.runtime.wake_jobs()
        return JobCreated(id=job.id, status=job.status)

    def _job(self, job_id: str) -> JobRecord:
        job = self.store.get(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id!r}")
        return job

    def _finished(self, job_id: str) -> tuple[JobRecord, list[ScoredQuery]]:
        """A job that is over and its scored pairs: all of a done job's, what a cancelled or failed one had scored."""
        job = self._job(job_id)
        if job.status in ("queued", "running"):
            state = {"queued": "is waiting to start", "running": f"is running ({job.done_pairs:,} of "
                     f"{job.total_pairs:,} pairs scored)"}[job.status]
            raise Conflict(f"job {job_id} {state}; results are ready once it is done, cancelled or failed")
        return job, self.store.results(job_id, job.top_n if job.kind == "json" else None)

    def _pairs_from_table(self, data: bytes, filename: str, given: dict[str, str | None], instruction: str | None
                          ) -> tuple[dict[str, str | None], list[tuple[str, str | None]], list[NewPair]]:
        """Column mapping (given, else guessed from the header), queries and pairs of an uploaded table."""
        frame = read_table(data, filename, self.settings.max_job_bytes)
        guessed = guess_columns(frame)
        columns = {role: given[role] if role in given else guessed.get(role) for role in COLUMN_FIELDS}
        for role in ("query", "document"):
            if columns[role] is None:
                raise InvalidField(
                    [COLUMN_FIELDS[role]], f"no column looks like the {role}; name it with the form field "
                    f"{COLUMN_FIELDS[role]} (the file has: {', '.join(frame.columns)})", kind="missing")
        rows = pairs_from_table(frame, columns["query"], columns["document"], columns["label"],
                                columns["instruction"])
        limits.check_job(self.settings, len(rows))
        for r in rows:
            for role, text in (("query", r.query), ("document", r.document), ("instruction", r.instruction or "")):
                limits.check_text(self.settings, f"row {r.row + 1}: the {columns[role]!r} cell", text)
        queries: list[tuple[str, str | None]] = []
        pairs: list[NewPair] = []
        grouped = queries_of((r.query, r.document, r.instruction or instruction or None) for r in rows)
        for qnum, (query, positions) in enumerate(grouped):
            queries.append((query.query, query.instruction))
            pairs.extend(NewPair(qnum, d, rows[p].document, rows[p].row, rows[p].label)
                         for d, p in enumerate(positions))
        return columns, queries, pairs


def _check_passages(passage_tokens: int | None, max_passages: int | None) -> None:
    check_passage_options(Query("", [], passage_tokens=passage_tokens, max_passages=max_passages))


def job_status(job: JobRecord) -> JobStatus:
    total = job.total_pairs
    fraction = round(job.done_pairs / total, 4) if total else 1.0
    return JobStatus(
        id=job.id, status=job.status, kind=job.kind,
        progress=JobProgress(done=job.done_pairs, total=total, fraction=fraction),
        eta_seconds=job.eta_seconds(), created_at=job.created_at, started_at=job.started_at,
        finished_at=job.finished_at, error=job.error, filename=job.filename, columns=job.columns)
