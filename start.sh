#!/usr/bin/env bash
# ./start.sh        set up .venv on first run, then start the workbench and the API on one port (8501)
# ./start.sh test   same set-up, then ruff and the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PYTHON=${PYTHON:-python3}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[start.sh] creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  # requirements.txt: torch's CPU wheel, then this project (editable) with every extra; pyproject.toml: what they need
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[start.sh] installing requirements (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first and alone, so nothing else can pull a CUDA build in its place
    "$VENV/bin/python" -m pip install -q "$(grep -E '^torch==' requirements.txt)"
    "$VENV/bin/python" -m pip install -q -r requirements.txt
    echo "$want" > "$stamp"
  fi
  # Editable: `import reranker` then works from anywhere (bench/ scripts, worker processes). A fresh clone elsewhere
  # has its own .venv; this re-points one that was made for another checkout.
  if [ "$(cd / && "$VENV/bin/python" -c 'import importlib.util as u; print(u.find_spec("reranker").origin)' \
          2>/dev/null)" != "$ROOT/reranker/__init__.py" ]; then
    "$VENV/bin/python" -m pip install -q --no-deps -e .
  fi
}

ensure_chromium() {
  # fonts-wqy-zenhei: without a CJK font Chromium draws Chinese as empty boxes in the screenshots
  if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wenquanyi; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[start.sh] installing Debian's chromium and a Chinese font for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei) \
      >/dev/null 2>&1 || echo "[start.sh] could not install chromium; the browser test will fail and say why"
  elif ! command -v chromium >/dev/null 2>&1; then
    echo "[start.sh] chromium is not installed (apt-get install chromium); the browser test will fail and say why"
  fi
}

setup
export PATH="$VENV/bin:$PATH"

case "${1:-run}" in
  test)
    shift || true
    ensure_chromium
    ruff check .
    exec python -m pytest "$@"
    ;;
  run|"")
    port=${RERANKER_PORT:-${RERANKER_UI_PORT:-8501}}
    if [ -n "${RERANKER_API_PORT:-}" ]; then
      echo "[start.sh] RERANKER_API_PORT is no longer used: the pages and the API share one port, $port" \
           "(RERANKER_PORT). Point API clients at http://<this machine>:$port (/v1/rerank, /api/rerank, ...)." >&2
    fi
    # One process: the pages, the API and the job worker, one copy of the weights. exec, so Ctrl-C and SIGTERM
    # reach it directly and it leaves nothing behind.
    exec python -m reranker workbench --port "$port" </dev/null
    ;;
  *)
    echo "usage: ./start.sh [test [pytest args]]" >&2
    exit 2
    ;;
esac
