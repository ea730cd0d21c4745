#!/usr/bin/env bash
# ./start.sh        set up .venv on first run, then start the workbench (and the sidecar API)
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
    ui_port=${RERANKER_UI_PORT:-8501}
    api_port=${RERANKER_API_PORT:-8502}
    # Each child gets its own process group (set -m), so stopping a group reaches all it started, and
    # Ctrl-C reaches only this script, which then stops both.
    # Neither reads the terminal (a background group that did would be stopped): no first-run email prompt.
    set -m
    python -m reranker serve --port "$api_port" </dev/null &
    api_pid=$!
    # The workbench scores on the sidecar, so one process holds the model; only the workbench gets this address
    # (a RERANKER_SERVER set by the caller makes the sidecar a gateway to that server).
    RERANKER_SERVER=http://127.0.0.1:$api_port RERANKER_SERVER_KEY=${RERANKER_API_KEY:-} \
      streamlit run app.py --server.port "$ui_port" --server.address 127.0.0.1 --server.showEmailPrompt false \
      </dev/null &
    ui_pid=$!
    set +m
    stop_all() {
      trap - INT TERM EXIT
      kill -TERM -- "-$api_pid" "-$ui_pid" 2>/dev/null || true
      for _ in $(seq 50); do  # 10 s to shut down cleanly, then SIGKILL
        kill -0 -- "-$api_pid" 2>/dev/null || kill -0 -- "-$ui_pid" 2>/dev/null || break
        sleep 0.2
      done
      kill -KILL -- "-$api_pid" "-$ui_pid" 2>/dev/null || true
      wait 2>/dev/null || true
    }
    trap 'stop_all; exit 130' INT
    trap 'stop_all; exit 143' TERM
    trap stop_all EXIT
    echo "[start.sh] workbench http://127.0.0.1:$ui_port  sidecar API http://127.0.0.1:$api_port/docs  (Ctrl-C stops both)"
    while kill -0 "$api_pid" 2>/dev/null && kill -0 "$ui_pid" 2>/dev/null; do
      wait -n 2>/dev/null || sleep 1
    done
    echo "[start.sh] $(kill -0 "$api_pid" 2>/dev/null && echo "the workbench" || echo "the sidecar API") stopped; stopping the other" >&2
    exit 1
    ;;
  *)
    echo "usage: ./start.sh [test [pytest args]]" >&2
    exit 2
    ;;
esac
