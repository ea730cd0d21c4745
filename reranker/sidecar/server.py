"""`serve(host, port)`: run the sidecar under uvicorn until Ctrl-C or SIGTERM; `checked_start`: what every server
of this project checks before it starts (this one, and the workbench with the API on one port)."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from typing import IO

import uvicorn

from reranker.core.environment import LOG_LEVEL
from reranker.sidecar.data_lock import DataDirError, lock_data_dir
from reranker.sidecar.settings import Settings, SettingsError, refuse_open_exposure, refuse_own_address


def serve(host: str = "127.0.0.1", port: int = 8502, allow_open: bool = False) -> None:
    """Start the sidecar on host:port (127.0.0.1 unless told otherwise); returns once it has shut down."""
    settings, data_lock = checked_start("serve", host, port, allow_open)
    from reranker.sidecar.application import create_app

    app = create_app(settings, data_lock=data_lock)
    uvicorn.run(app, host=host, port=port, log_level=LOG_LEVEL.read(),
                timeout_graceful_shutdown=5)


def checked_start(command: str, host: str, port: int, allow_open: bool) -> tuple[Settings, IO[str]]:
    """The settings, and the data folder locked, for a server about to listen on host:port; SystemExit(2) with the
    reason when it must not start (a bad setting, an open address without a key, another server on the folder).

    Checked before torch, transformers and FastAPI are imported, so a second server on the same folder is refused
    in a moment, not after the seconds those imports take."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        if allow_open:
            settings = replace(settings, allow_open=True)
        refuse_own_address(settings.server, host, port)
        refuse_open_exposure(host, settings)
        return settings, lock_data_dir(settings.data_dir)
    except (SettingsError, DataDirError) as e:
        print(f"reranker {command}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
