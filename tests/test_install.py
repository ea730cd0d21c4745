"""Installed the way Python users install things: `pip install .` in a clean virtualenv that has torch gives a working
engine and CLI and nothing of the front ends; `pip install '.[server]'` adds a working `python -m reranker serve`."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from reranker.testing.sidecar_process import free_port

ROOT = Path(__file__).resolve().parent.parent


def distributions_needed_by(name: str) -> set[str]:
    """`name` and everything it requires, transitively, as installed here (their normalised names)."""
    found: set[str] = set()
    todo = [name]
    while todo:
        current = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if current in found:
            continue
        try:
            requirements = importlib.metadata.requires(current) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        found.add(current)
        todo += [re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in requirements if "extra ==" not in r]
    return found


def torch_alone(folder: Path) -> Path:
    """A folder holding only torch and what it needs (links into this environment), as a machine that has torch
    installed and nothing else: the CPU wheel is about 1 GB, so the clean environment borrows it, not a copy."""
    folder.mkdir()
    for name in distributions_needed_by("torch"):
        dist = importlib.metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (folder / top).exists() and top != "__pycache__":
                (folder / top).symlink_to(source)
    return folder


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project as pip sees it, copied (pip builds in the source tree, which must stay clean)."""
    folder = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "reranker", folder / "reranker", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.fixture(scope="module")
def clean_venv(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with torch (and only torch) importable, and this project installed from its source."""
    base = tmp_path_factory.mktemp("install")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "torch-alone.pth").write_text(str(torch_alone(base / "torch-alone")) + "\n")
    python = venv / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source)], capture_output=True, text=True,
                          timeout=900, cwd=base)
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def run(python: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def test_pip_install_gives_a_working_engine_without_the_front_ends(clean_venv: Path, tiny_model_dir: Path,
                                                                   reranker, tmp_path: Path) -> None:
    code = ("import importlib.util, json, reranker\n"
            "from reranker import Qwen3Reranker\n"
            f"r = Qwen3Reranker(model={str(tiny_model_dir)!r}, device='cpu')\n"
            "print(json.dumps({'from': reranker.__file__, 'scores': r.score('capital of China?', "
            "['Beijing is the capital.', 'Gravity.']), 'absent': [m for m in ('fastapi', 'streamlit', 'ray', "
            "'pytest') if importlib.util.find_spec(m) is None]}))")
    done = run(clean_venv, code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert "site-packages" in answer["from"]  # the installed copy, not this checkout
    assert answer["scores"] == pytest.approx(reranker.score("capital of China?", ["Beijing is the capital.",
                                                                                  "Gravity."]), abs=1e-5)
    assert answer["absent"] == ["fastapi", "streamlit", "ray", "pytest"]

    documents = tmp_path / "docs.txt"
    documents.write_text("Beijing is the capital.\nGravity.\n", encoding="utf-8")
    ranked = subprocess.run([str(clean_venv), "-m", "reranker", "rank", "--query", "capital of China?", "--docs",
                             str(documents), "--model", str(tiny_model_dir), "--format", "json"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert ranked.returncode == 0, ranked.stderr[-3000:]
    assert len(json.loads(ranked.stdout)) == 2
    serve = subprocess.run([str(clean_venv), "-m", "reranker", "serve"], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert serve.returncode == 2 and "pip install 'qwen-ranker-pro[server]'" in serve.stderr


def test_the_server_extra_gives_a_working_serve(clean_venv: Path, source: Path, tiny_model_dir: Path,
                                                 tmp_path: Path) -> None:
    done = subprocess.run([str(clean_venv), "-m", "pip", "install", "-q", f"{source}[server]"], capture_output=True,
                          text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    pages = subprocess.run([str(clean_venv), "-m", "reranker", "workbench"], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert pages.returncode == 2 and "pip install 'qwen-ranker-pro[server,ui]'" in pages.stderr
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
           "RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DATA_DIR": str(tmp_path / "data"), "RERANKER_API_KEY": ""}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(clean_venv), "-m", "reranker", "serve", "--port", str(port)], cwd=tmp_path,
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        answer = requests.post(f"http://127.0.0.1:{port}/v1/rerank", timeout=60,
                               json={"query": "capital of China?", "documents": ["Gravity.", "Beijing."]})
        assert answer.status_code == 200 and len(answer.json()["results"]) == 2
    finally:
        server.terminate()
        server.wait(30)
