"""`serve(host, port)`: run the sidecar under uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from reranker.sidecar.data_lock import DataDirError
from reranker.sidecar.settings import Settings, SettingsError


def serve(host: str = "127.0.0.1", port: int = 8502) -> None:
    """Start the sidecar on host:port (127.0.0.1 unless told otherwise); returns once it has shut down."""
    from reranker.sidecar.application import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(Settings.from_env())
    except (SettingsError, DataDirError) as e:
        print(f"reranker serve: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("RERANKER_LOG_LEVEL", "info"),
                timeout_graceful_shutdown=5)
