"""Schemathesis over the sidecar's OpenAPI schema: bodies, parameters and values the schema allows and does
not, sent to a live sidecar. Whatever comes in, the answer is never a 5xx. Bounded to fit CI's time."""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from reranker.testing.sidecar_process import SidecarProcess

EXAMPLES_PER_OPERATION = 25


def test_no_input_gives_a_server_error(open_sidecar: SidecarProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{open_sidecar.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14  # every route, /health and /metrics too
    failures: list[str] = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers_without_a_server_error(case) -> None:
            response = case.call(timeout=60)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.body!r:.300} -> {response.status_code}: "
                                f"{response.text[:300]}")

        answers_without_a_server_error()
    for job in requests.get(f"{open_sidecar.url}/api/jobs?limit=1000", timeout=30).json():
        if job["status"] in ("queued", "running"):  # the jobs it made would hold up the job tests on this sidecar
            requests.delete(f"{open_sidecar.url}/api/jobs/{job['id']}", timeout=30)
    assert failures == []
