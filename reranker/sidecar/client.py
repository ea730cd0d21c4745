"""A small client for the sidecar's job API, as the workbench's CSV batches and Jobs pages use it (requests only, no
FastAPI); scoring goes through reranker.remote.RankerServerBackend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests


class SidecarError(RuntimeError):
    """The sidecar could not be reached, or refused; the message says which and why.

    status: the HTTP status it answered with (404: no such job; 409: not in a state that allows it); None when it
    could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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

    def jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The `limit` most recent jobs, newest first, each as `job()` gives it."""
        jobs = self._call("GET", "/api/jobs", params={"limit": limit}).json()
        if not isinstance(jobs, list):
            raise SidecarError(f"the sidecar at {self.url} answered /api/jobs with something other than a list")
        return jobs

    def job(self, job_id: str) -> dict[str, Any]:
        """Status, kind, progress {done, total, fraction}, eta_seconds, created/started/finished_at, error, filename."""
        return self._call("GET", _job_path(job_id)).json()

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", _job_path(job_id)).json()

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", _job_path(job_id, "/retry")).json()

    def results_csv(self, job_id: str) -> bytes:
        """A done job's pairs in the export schema (reranker.exports); a CSV job's with the upload's other columns."""
        return self._call("GET", _job_path(job_id, "/results"), params={"format": "csv"}).content

    def results_json(self, job_id: str) -> bytes:
        """A done job's results as the sidecar's JSON document (each query with its documents, best first)."""
        return self._call("GET", _job_path(job_id, "/results"), params={"format": "json"}).content

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as e:
            raise SidecarError(f"could not reach the sidecar at {self.url}: {e}") from None
        if response.status_code >= 400:
            raise SidecarError(f"the sidecar answered {response.status_code}: {_detail(response)}",
                               response.status_code)
        return response


def _job_path(job_id: str, rest: str = "") -> str:
    """/api/jobs/<id><rest>, the id quoted whole: an id from a URL or a form never reaches another path."""
    return f"/api/jobs/{quote(job_id, safe='')}{rest}"


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
