"""The layout's rules, checked on the source: which package may import which UI or HTTP library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "reranker"
UI = {"streamlit", "plotly"}
HTTP_SERVER = {"fastapi", "starlette", "uvicorn"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def imported_roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module in imported_modules(path)}


def reaches_into(path: Path, package: str, allowed: tuple[str, ...] = ()) -> set[str]:
    """The modules of `package` a file imports, but for the `allowed` ones."""
    return {m for m in imported_modules(path)
            if (m == package or m.startswith(package + ".")) and m not in allowed}


def banned_for(path: Path) -> set[str]:
    part = path.relative_to(PACKAGE).parts[0]
    if part == "workbench":
        return HTTP_SERVER
    if part == "sidecar":
        return UI
    return UI | HTTP_SERVER


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_package_imports_only_what_its_layer_may(path: Path) -> None:
    wrong = imported_roots(path) & banned_for(path)
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}, which its layer may not (ARCHITECTURE.md)"


@pytest.mark.parametrize("path", [ROOT / "app.py", *sorted((ROOT / "views").glob("*.py")),
                                  *sorted((PACKAGE / "workbench").glob("*.py"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_reach_the_sidecar_only_over_http(path: Path) -> None:
    assert not imported_roots(path) & HTTP_SERVER
    assert reaches_into(path, "reranker.sidecar", allowed=("reranker.sidecar.client",)) == set()


@pytest.mark.parametrize("path", sorted([*PACKAGE.glob("*.py"), *(PACKAGE / "remote").glob("*.py")]),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_layer_needs_no_front_end(path: Path) -> None:
    assert reaches_into(path, "reranker.workbench") == set()
    allowed = ("reranker.sidecar.server",) if path.name == "cli.py" else ()  # `serve` starts it, lazily
    assert reaches_into(path, "reranker.sidecar", allowed) == set()


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import streamlit as st\n    from fastapi.responses import JSONResponse\n")
    assert imported_roots(module) == {"streamlit", "fastapi"}


def test_no_two_modules_share_a_name() -> None:
    names: dict[str, list[str]] = {}
    for path in [ROOT / "app.py", *(ROOT / "views").glob("*.py"), *PACKAGE.rglob("*.py")]:
        if path.name not in ("__init__.py", "__main__.py"):
            names.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}


def test_a_workbench_on_a_server_never_imports_torch() -> None:
    """Under ./start.sh the workbench talks to the sidecar: importing what its pages use must not load torch
    (about 400 MB a process), nor anything that loads a model."""
    import subprocess
    import sys

    code = ("import sys; import reranker.workbench.frame, reranker.workbench.results, "
            "reranker.workbench.batch_scoring, reranker.workbench.comparison, reranker.workbench.charts, "
            "reranker.workbench.job_panel, reranker.remote; "
            "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
