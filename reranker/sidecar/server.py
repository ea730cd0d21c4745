"""`serve(host, port)`: run the sidecar under uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from reranker.sidecar.data_lock import DataDirError, lock_data_dir
from reranker.sidecar.settings import Settings, SettingsError, refuse_own_address


def serve(host: str = "127.0.0.1", port: int = 8502) -> None:
    """Start the sidecar on host:port (127.0.0.1 unless told otherwise); returns once it has shut down.

    The settings and the data folder's lock are checked before torch, transformers and FastAPI are imported, so
    a second sidecar on the same folder is refused in a moment, not after the seconds those imports take."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        refuse_own_address(settings.server, host, port)
        data_lock = lock_data_dir(settings.data_dir)
    except (SettingsError, DataDirError) as e:
        print(f"reranker serve: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    from reranker.sidecar.application import create_app

    app = create_app(settings, data_lock=data_lock)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("RERANKER_LOG_LEVEL", "info"),
                timeout_graceful_shutdown=5)
