"""A small client for the sidecar's job API, as the workbench's batch page uses it (requests only, no FastAPI);
scoring goes through reranker.remote.RankerServerBackend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests


class SidecarError(RuntimeError):
    """The sidecar could not be reached, or refused; the message says which and why."""


class SidecarClient:
    """url: the sidecar's base URL; key: its RERANKER_API_KEY (sent as a Bearer token) when one is set."""

    def __init__(self, url: str, key: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        if key:
            self._session.headers["Authorization"] = f"Bearer {key}"

    def submit_table(self, filename: str, data: bytes, columns: Mapping[str, str | None]) -> dict[str, Any]:
        """Start a job on an uploaded table; columns maps query/document/label/instruction to a header (or None)."""
        form = {f"{role}_column": name or "" for role, name in columns.items()}
        return self._call("POST", "/api/jobs", files={"file": (filename, data, "text/csv")}, data=form).json()

    def job(self, job_id: str) -> dict[str, Any]:
        """Status, progress {done, total, fraction} and eta_seconds."""
        return self._call("GET", f"/api/jobs/{job_id}").json()

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/api/jobs/{job_id}").json()

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/jobs/{job_id}/retry").json()

    def results_csv(self, job_id: str) -> bytes:
        return self._call("GET", f"/api/jobs/{job_id}/results", params={"format": "csv"}).content

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as e:
            raise SidecarError(f"could not reach the sidecar at {self.url}: {e}") from None
        if response.status_code >= 400:
            raise SidecarError(f"the sidecar answered {response.status_code}: {_detail(response)}")
        return response


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        if body.get("message"):
            return str(body["message"])
        if isinstance(body.get("detail"), str):
            return body["detail"]
    return str(body)[:500]
