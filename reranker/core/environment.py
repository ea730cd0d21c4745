"""Every `RERANKER_*` environment variable, declared once: its name, type, default and meaning, and how it is read.

The rest of the project reads these variables only through this module (`MODEL.read()`, `SERVER.read()`, ...), never
with `os.environ`; `tests/test_settings.py` holds that, and that README.md's "Settings" table is this module's
(`python -m reranker.core.environment --markdown` prints it). A variable is read fresh from the environment each time
it is asked for, never cached at import: tests set variables at run time, and a process may change them.

A value that cannot be used raises `SettingsError`, whose message names the variable. Empty counts as unset, so
`RERANKER_DEVICE=` gives the default. The sidecar reads its group at once, typed: `reranker.sidecar.settings.Settings`.

Variables marked `read_by="start.sh"` are read by the shell script, declared here so that the one table lists them.
Those marked `read_by="tests"` are the tests' own; `tests/conftest.py` may read them with `os.environ` (the rule
above is for `reranker/`, `views/` and `app.py`), `reranker/testing/` reads them through here.

To add a setting: declare it below (the table is built from the declarations, in their order), read it with
`.read()`, and paste the output of `--markdown` over README's "Settings" table; tests/test_settings.py fails until
both are done.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")
Reader = Literal["python", "start.sh", "tests"]


class SettingsError(ValueError):
    """An environment variable holds something that cannot be used; the message names it."""


@dataclass(frozen=True)
class Variable(Generic[T]):
    """One environment variable: `read()` gives its typed value, or `default` when it is unset or empty."""

    name: str
    default: T
    meaning: str
    """What it does, in a line: README's "Settings" table says exactly this."""
    parse: Callable[[str, str], T | None] = field(repr=False)
    """(name, value) -> the typed value; None: as if unset (a value of only spaces, for most). Raises
    SettingsError naming the variable for a value that cannot be used."""
    shown_default: str | None = None
    """How the table writes the default, where the value alone does not say it (see `default_text`)."""
    read_by: Reader = "python"

    def read(self, env: Mapping[str, str] | None = None) -> T:
        """The value in `env` (default: this process's environment, as it is now)."""
        raw = (os.environ if env is None else env).get(self.name, "")
        if raw == "":
            return self.default
        value = self.parse(self.name, raw)
        return self.default if value is None else value

    @property
    def default_text(self) -> str:
        """The default as the table writes it: "unset" for none, `text` for a string, a number as it is."""
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None or self.default is False or self.default == ():
            return "unset"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        if isinstance(self.default, int):
            return str(self.default)
        return f"`{self.default}`"


# How a value is read. Each takes (name, value) and names the variable in its error.

def as_text(_name: str, raw: str) -> str:
    """The value as it is, spaces included (a key or a folder name may hold them)."""
    return raw


def as_address(_name: str, raw: str) -> str | None:
    """An address: surrounding spaces dropped; only spaces is unset."""
    return raw.strip() or None


def as_path(_name: str, raw: str) -> Path:
    return Path(raw)


def as_count(name: str, raw: str) -> int | None:
    """A whole number of at least 1; `_` may group digits (10_000)."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise SettingsError(f"{name}={raw!r} must be at least 1")
    return value


def as_seconds(name: str, raw: str) -> float | None:
    """A number of at least 0."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} may not be negative")
    return value


def as_flag(name: str, raw: str) -> bool:
    """1, true, yes or 0, false, no (any case); spaces alone: 0."""
    raw = raw.strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise SettingsError(f"{name}={raw!r} is not 1 or 0")


def as_names(_name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated, each stripped; empty items dropped."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def as_origins(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated browser origins; `*` (every site) is refused, the origins must be listed."""
    origins = as_names(name, raw)
    if "*" in origins:
        raise SettingsError(f"{name} may not be '*': list the origins that may call the API")
    return origins


# The model.

MODEL: Variable[str] = Variable(
    "RERANKER_MODEL", "Qwen/Qwen3-Reranker-0.6B", "hub id (`…-4B`, `…-8B` too) or a local folder", as_text)
EXTRA_MODELS: Variable[tuple[str, ...]] = Variable(
    "RERANKER_EXTRA_MODELS", (), "the sidecar: more models it may load (comma-separated hub ids or folders), chosen "
    "by a request's `model` (docs/API.md); the Compare page offers them", as_names)
DEVICE: Variable[str] = Variable(
    "RERANKER_DEVICE", "auto", "`auto` (CUDA, then Apple MPS, then CPU), `cpu`, `cuda`, `cuda:1`, `mps`", as_text)
DTYPE: Variable[str] = Variable(
    "RERANKER_DTYPE", "auto", "`auto` (bfloat16 on CUDA, float32 elsewhere), `float32`, `bfloat16`, `float16`, or "
    "`int8`: the approximate CPU mode, about 3.7x float32's speed with scores within about 0.01 on the full-size "
    "shape (docs/BENCHMARKS.md); its scores carry `(int8)` after the model's name everywhere; or `fast`: bfloat16 "
    "where the CPU has AVX512-BF16 or AMX, else int8, named by the one it picked", as_text)
"""Checked by the engine when it loads (engine/loading.resolve_dtype), as `--dtype` is."""
CALIBRATION: Variable[Path | None] = Variable(
    "RERANKER_CALIBRATION", None, "the API: a CAL.json from `python -m reranker calibrate`; its scores are then "
    "P(relevant) on those labels, the ranking unchanged, the model's name marked `(calibrated …)` (docs/TUNE.md)",
    as_path)

# A model on a server.

SERVER: Variable[str | None] = Variable(
    "RERANKER_SERVER", None, "score on this server instead of loading the model: a Qwen-Ranker sidecar, a vLLM "
    "server, or a Cohere / Jina `/v1/rerank` API (docs/SCALING.md). Read by the workbench, the CLI, the batch command "
    "and the API (which then is a gateway: its queue and jobs in front of that server, the pages too under "
    "`./start.sh`; its own address is refused)", as_address)
SERVER_KEY: Variable[str | None] = Variable(
    "RERANKER_SERVER_KEY", None, "that server's key, sent as `Authorization: Bearer` (the sidecar's own key stays "
    "`RERANKER_API_KEY`)", as_text)
SERVER_MODEL: Variable[str | None] = Variable(
    "RERANKER_SERVER_MODEL", None, "the model name sent to servers that want one (a vLLM server's is asked for)",
    as_text)
API_URL: Variable[str | None] = Variable(
    "RERANKER_API_URL", None, "the workbench's old name for `RERANKER_SERVER`, still read by the workbench (its key "
    "then `RERANKER_SERVER_KEY`, else `RERANKER_API_KEY`)", as_address)

# Listening.

PORT: Variable[int] = Variable(
    "RERANKER_PORT", 8501, "the one port `./start.sh` serves the pages and the API on", as_count, read_by="start.sh")
UI_PORT: Variable[int | None] = Variable(
    "RERANKER_UI_PORT", None, "the port's older name, read by `./start.sh` when `RERANKER_PORT` is unset", as_count,
    read_by="start.sh")
API_PORT: Variable[int | None] = Variable(
    "RERANKER_API_PORT", None, "no longer used (the API is on the workbench's port); `./start.sh` says so when it is "
    "set", as_count, read_by="start.sh")
HOST: Variable[str] = Variable(
    "RERANKER_HOST", "127.0.0.1", "the address to listen on (`--host`); any other than loopback needs "
    "`RERANKER_API_KEY` or `RERANKER_ALLOW_OPEN=1`", as_text)
API_KEY: Variable[str | None] = Variable(
    "RERANKER_API_KEY", None, "when set, every endpoint but `/health` and the `/docs` page with its schema needs "
    "`Authorization: Bearer <key>` (the page's **Authorize** button sends it), and the pages, when they listen "
    "beyond loopback, ask for it once per browser session", as_text)
ALLOW_OPEN: Variable[bool] = Variable(
    "RERANKER_ALLOW_OPEN", False, "`1`: listen beyond loopback without a key, on purpose (`--allow-open`)", as_flag)
CORS_ORIGINS: Variable[tuple[str, ...]] = Variable(
    "RERANKER_CORS_ORIGINS", (), "comma-separated origins allowed to call from a browser; `*` is refused", as_origins,
    shown_default="unset (no CORS)")
LOG_LEVEL: Variable[str] = Variable("RERANKER_LOG_LEVEL", "info", "uvicorn's log level", as_text)

# Where things are kept.

DATA_DIR: Variable[Path] = Variable(
    "RERANKER_DATA_DIR", Path("data"), "where the sidecar's `jobs.sqlite3`, the workbench's saved sessions "
    "(`sessions/`) and the evaluate command's `judgements.sqlite3` live", as_path, shown_default="`./data`")

# The sidecar's limits (a request over one is answered 413, naming the variable).

MAX_DOCUMENTS: Variable[int] = Variable(
    "RERANKER_MAX_DOCUMENTS", 1000, "documents per query in one request, in every dialect", as_count)
MAX_REQUEST_PAIRS: Variable[int] = Variable(
    "RERANKER_MAX_REQUEST_PAIRS", 10_000, "pairs in one interactive request (every dialect, `/api/rerank`); more "
    "goes to `/api/jobs`", as_count)
MAX_DOCUMENT_CHARS: Variable[int] = Variable(
    "RERANKER_MAX_DOCUMENT_CHARS", 100_000, "characters per document, query or instruction (jobs too)", as_count)
MAX_BODY_BYTES: Variable[int] = Variable(
    "RERANKER_MAX_BODY_BYTES", 10 * 1024 * 1024, "request body, except job submissions", as_count,
    shown_default="10485760 (10 MiB)")
MAX_JOB_BYTES: Variable[int] = Variable(
    "RERANKER_MAX_JOB_BYTES", 20 * 1024 * 1024, "body of a job submission (JSON or CSV upload)", as_count,
    shown_default="20971520 (20 MiB)")
MAX_JOB_PAIRS: Variable[int] = Variable("RERANKER_MAX_JOB_PAIRS", 200_000, "pairs in one job", as_count)
MAX_QUEUE: Variable[int] = Variable(
    "RERANKER_MAX_QUEUE", 1000, "interactive requests waiting for the model before new ones get 503", as_count)

# How the sidecar's queue cuts the work into engine calls.

BATCH_MAX_PAIRS: Variable[int] = Variable(
    "RERANKER_BATCH_MAX_PAIRS", 1024, "pairs in one engine call, from one request or merged from several", as_count)
BATCH_MAX_CHARS: Variable[int] = Variable(
    "RERANKER_BATCH_MAX_CHARS", 1_000_000, "characters merged into one engine call (a cheap stand-in for tokens)",
    as_count)
SLICE_SECONDS: Variable[float] = Variable(
    "RERANKER_SLICE_SECONDS", 15.0, "about how long one engine call may run; a bigger request is served in slices, "
    "and a request that arrives meanwhile waits about this long at most behind them", as_seconds)
JOBS_YIELD_SECONDS: Variable[float] = Variable(
    "RERANKER_JOBS_YIELD_SECONDS", 10.0, "for this long after an interactive request, job calls are kept as short as "
    "an interactive call (requests wait little behind a job, which runs slower meanwhile); 0: never", as_seconds)
JOB_CHUNK_PAIRS: Variable[int] = Variable(
    "RERANKER_JOB_CHUNK_PAIRS", 32, "pairs a job scores and commits at a time", as_count)
JOB_CHUNK_DELAY: Variable[float] = Variable(
    "RERANKER_JOB_CHUNK_DELAY", 0.0, "seconds to pause after each chunk (tests use it to catch a job mid-way)",
    as_seconds)

# The tests' own.

TEST_TOKENIZER: Variable[str | None] = Variable(
    "RERANKER_TEST_TOKENIZER", None, "tests only: a tokenizer folder for the tests' tiny model (CI: the real Qwen3 "
    "tokenizer); unset, they build a small byte-level one", as_text, read_by="tests")
VLLM_VENV: Variable[str | None] = Variable(
    "RERANKER_VLLM_VENV", None, "tests and benchmarks only: the virtualenv with vLLM for the real-vLLM tests, made "
    "on first use (reranker/testing/vllm_process.py)", as_text, shown_default="`.venv-vllm` beside `.venv`",
    read_by="tests")

INFINITY_VENV: Variable[str | None] = Variable(
    "RERANKER_INFINITY_VENV", None, "tests and benchmarks only: the virtualenv with Infinity (infinity-emb) for the "
    "real-Infinity tests, made on first use (reranker/testing/infinity_process.py)", as_text,
    shown_default="`.venv-infinity` beside `.venv`", read_by="tests")

VARIABLES: tuple[Variable[Any], ...] = tuple(v for v in list(globals().values()) if isinstance(v, Variable))
"""Every variable, in the order declared above: the order of README's table."""


def markdown_table() -> str:
    """README's "Settings" table: one row per variable, with its default and meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{v.name}` | {v.default_text} | {v.meaning} |" for v in VARIABLES]
    return "\n".join(rows)


_listening_host: str | None = None


def set_listening_host(host: str | None) -> None:
    """Tell this process's pages the address their server listens on; the server that runs them in this process
    (sidecar.one_port.run) calls it, since `--host` may differ from RERANKER_HOST. None forgets it (tests)."""
    global _listening_host
    _listening_host = host


def listening_host() -> str:
    """The address the pages of this process are served on: the one their server was started with
    (`set_listening_host`), else RERANKER_HOST (`streamlit run app.py`, tests), else 127.0.0.1. Beyond loopback,
    with RERANKER_API_KEY set, the pages ask for the key (workbench.frame.unlocked)."""
    return _listening_host or HOST.read()


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--markdown"]):
        sys.exit("usage: python -m reranker.core.environment [--markdown]   (prints README's Settings table)")
    print(markdown_table())
