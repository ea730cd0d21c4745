"""Prometheus metrics of one sidecar (its own registry, so two apps in one process never collide)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from reranker.sidecar.request_queue import BackendCall

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_PAIR_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


class SidecarMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only add noise to a scrape
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("reranker_http_requests", "HTTP requests answered, by route and status code",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("reranker_http_request_seconds", "Time to answer an HTTP request, by route",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.pairs = Counter("reranker_pairs_scored", "(query, document) pairs scored, by source (api or job)",
                             ["source"], registry=r)
        self.tokens = Counter("reranker_prompt_tokens", "Prompt tokens the model read, by source (api or job)",
                              ["source"], registry=r)
        self.backend_calls = Histogram("reranker_engine_call_pairs",
                                      "Pairs per engine call; requests waiting together share one call",
                                      ["source"], buckets=_PAIR_BUCKETS, registry=r)
        self.engine_seconds = Histogram("reranker_engine_call_seconds", "Time of one engine call",
                                        ["source"], buckets=_LATENCY_BUCKETS, registry=r)
        self.merged_requests = Counter("reranker_engine_call_requests",
                                       "Requests (or job chunks) served by engine calls", ["source"], registry=r)
        self.queue_depth = Gauge("reranker_queue_depth", "Requests waiting for the model, by queue",
                                 ["queue"], registry=r)
        self.jobs = Gauge("reranker_jobs", "Jobs in the store, by status", ["status"], registry=r)
        self.model_loaded = Gauge("reranker_model_loaded", "1 once the model is loaded and serving", registry=r)

    def record_call(self, call: BackendCall) -> None:
        source = "job" if call.background else "api"
        self.pairs.labels(source).inc(call.pairs)
        self.tokens.labels(source).inc(call.tokens)
        self.backend_calls.labels(source).observe(call.pairs)
        self.engine_seconds.labels(source).observe(call.seconds)
        self.merged_requests.labels(source).inc(call.requests)

    def render(self, queue_depth: Callable[[], dict[str, int]] | None,
               job_counts: Callable[[], dict[str, int]] | None, loaded: bool) -> bytes:
        """The exposition text, with the gauges read now."""
        depth = queue_depth() if queue_depth is not None else {"interactive": 0, "jobs": 0}
        for name, value in depth.items():
            self.queue_depth.labels(name).set(value)
        if job_counts is not None:
            for status, count in job_counts().items():
                self.jobs.labels(status).set(count)
        self.model_loaded.set(1 if loaded else 0)
        return generate_latest(self.registry)
