"""One server per data folder: two would both pick up the same queued jobs and score them twice."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class DataDirError(RuntimeError):
    """RERANKER_DATA_DIR cannot be used: another running sidecar holds it, or it cannot be created or written."""


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on data_dir/sidecar.lock until the returned file is closed or the process dies.

    The operating system drops the lock with the process, so a sidecar killed with `kill -9` never leaves a
    stale lock behind for its restart to trip over.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(data_dir / "sidecar.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held while serving
    except OSError as e:
        raise DataDirError(f"the data folder {data_dir} cannot be used ({e.strerror or e}); point RERANKER_DATA_DIR "
                           "at a folder this user can write") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirError(
            f"another Qwen-Ranker server (pid {holder}) is already using the data folder {data_dir.resolve()}; stop "
            "it, or give this one a folder of its own with RERANKER_DATA_DIR") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
