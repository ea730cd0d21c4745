"""The sidecar HTTP API over the engine: `python -m reranker serve` (see docs/API.md)."""
