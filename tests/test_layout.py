"""The layout's rules, checked on the source: the layers of docs/ARCHITECTURE.md, imports running one way with no
circle, and which part may import which library."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "reranker"
PAGES = [ROOT / "app.py", *sorted((ROOT / "views").glob("*.py"))]
UI = {"streamlit", "plotly"}
HTTP_SERVER = {"fastapi", "starlette", "uvicorn", "pydantic", "prometheus_client"}
HEAVY = {"torch", "transformers", "tokenizers", "huggingface_hub"}

LAYERS = {
    "core": 0,
    "formats": 1,
    "engine": 2, "remote": 2, "analysis": 2,
    "backends": 3,
    "cli": 4, "sidecar": 4, "workbench": 4,
    "testing": 5,
}
"""Each part of the package and its layer. A module imports from its own part and from lower layers, never from a
higher layer or another part of its own (ARCHITECTURE.md, "The layers")."""
NOT_IMPORTED = {
    "core": UI | HTTP_SERVER | HEAVY | {"requests", "pandas", "ray", "sentence_transformers"},
    "formats": UI | HTTP_SERVER | HEAVY | {"requests", "ray", "sentence_transformers"},
    "engine": UI | HTTP_SERVER | {"pandas", "ray"},
    "remote": UI | HTTP_SERVER | HEAVY | {"pandas", "ray", "sentence_transformers"},
    "analysis": UI | HTTP_SERVER | HEAVY | {"requests", "ray", "sentence_transformers"},
    "backends": UI | HTTP_SERVER | {"pandas", "ray"},
    "cli": UI | HTTP_SERVER,
    "sidecar": UI,
    "workbench": HTTP_SERVER,
    "testing": UI,
}
"""The libraries each part may not import: the core needs none of them (`from reranker import Query` stays light),
the engine no pandas, Ray or web server, the workbench no web server."""
STARTED_LAZILY = {("cli", "sidecar")}
"""`python -m reranker serve` and `workbench` start the servers: the CLI imports them inside those commands only."""
ALSO_IMPORTED = {"reranker.sidecar.one_port": {"streamlit"}}
"""A module's own exemption from its part's banned libraries: the one-port server serves the pages (Streamlit's
`st.App`) with the API as routes, so the composition of both lives beside the API it carries."""


def imports_of(path: Path, at_top_only: bool = False, text: str | None = None) -> set[str]:
    """Every module a file imports (at module level only, with at_top_only), relative imports resolved; `text`: read
    that as the file's source instead of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8") if text is None else text, str(path))
    nodes = tree.body if at_top_only else ast.walk(tree)
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    modules = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                modules.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                modules.add(node.module)
    return modules


def part_of(module: str) -> str | None:
    """The part of the package a module `reranker.<part>...` belongs to; None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "reranker" else None


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name == "backends.py")
"""The modules of the parts (the package's own __init__, __main__ only re-export and run the CLI)."""


def test_every_part_has_a_layer() -> None:
    parts = {part_of(module_name(p)) for p in MODULES}
    assert parts == set(LAYERS), "a new part of the package needs a layer in LAYERS and in ARCHITECTURE.md"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_down_the_layers(path: Path) -> None:
    mine = part_of(module_name(path))
    at_top = imports_of(path, at_top_only=True)
    wrong = []
    for module in imports_of(path):
        theirs = part_of(module)
        if module == "reranker":
            wrong.append(f"{module} (import from the module that defines the name)")
        elif theirs is None or theirs == mine:
            continue
        elif (mine, theirs) in STARTED_LAZILY and module not in at_top:
            continue
        elif theirs not in LAYERS or LAYERS[theirs] >= LAYERS[mine]:
            wrong.append(module)
    assert not wrong, f"{module_name(path)} ({mine}, layer {LAYERS[mine]}) imports {wrong}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_part_imports_only_the_libraries_its_layer_may(path: Path) -> None:
    banned = NOT_IMPORTED[part_of(module_name(path))] - ALSO_IMPORTED.get(module_name(path), set())
    wrong = {m.split(".")[0] for m in imports_of(path)} & banned
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}, which its part may not (ARCHITECTURE.md)"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_are_a_front_end_beside_the_workbench(path: Path) -> None:
    """The pages import what the workbench may: no web server, and nothing of the sidecar's code."""
    imported = imports_of(path)
    assert not {m.split(".")[0] for m in imported} & HTTP_SERVER
    assert not {m for m in imported if part_of(m) in ("sidecar", "cli", "testing")}


def test_no_circle_among_the_modules() -> None:
    """Import time order: a module's top-level imports never lead back to it."""
    names = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in imports_of(path, at_top_only=True) if m in names and m != name}
             for name, path in names.items()}
    for name, path in names.items():  # `from package import module` names the module
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module:
                graph[name] |= {f"{node.module}.{a.name}" for a in node.names} & set(names)
    seen: dict[str, int] = {}
    path_so_far: list[str] = []

    def visit(name: str) -> None:
        seen[name] = 1
        path_so_far.append(name)
        for nxt in sorted(graph[name]):
            assert seen.get(nxt) != 1, f"import circle: {' -> '.join(path_so_far[path_so_far.index(nxt):])} -> {nxt}"
            if nxt not in seen:
                visit(nxt)
        path_so_far.pop()
        seen[name] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name)


def test_the_checker_sees_imports_inside_functions_and_relative_ones() -> None:
    probe = PACKAGE / "core" / "_layout_probe.py"  # read as if it were there; nothing is written into the package
    text = "from . import ranking\ndef f():\n    import streamlit as st\n    from reranker.workbench import frame\n"
    assert imports_of(probe, text=text) == {"reranker.core", "streamlit", "reranker.workbench"}
    assert imports_of(probe, at_top_only=True, text=text) == {"reranker.core"}


def test_ui_and_web_libraries_only_in_the_workbench_the_sidecar_and_the_pages() -> None:
    """Streamlit, plotly, FastAPI and Starlette stay in the two front ends that draw pages and serve HTTP."""
    allowed = ("reranker.workbench", "reranker.sidecar")
    wrong = {module_name(p): sorted(found) for p in PACKAGE.rglob("*.py")
             if not module_name(p).startswith(allowed)
             and (found := {m.split(".")[0] for m in imports_of(p)} & {"streamlit", "plotly", "fastapi", "starlette"})}
    assert wrong == {}


def test_no_two_classes_share_a_name() -> None:
    """A class name says which class it is, across the package, the pages and app.py."""
    where: dict[str, list[str]] = {}
    for path in [*PAGES, *PACKAGE.rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(module_name(path))
    assert {name: modules for name, modules in where.items() if len(modules) > 1} == {}


def test_no_two_modules_share_a_name() -> None:
    names: dict[str, list[str]] = {}
    for path in [*PAGES, *PACKAGE.rglob("*.py")]:
        if path.name not in ("__init__.py", "__main__.py"):
            names.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}


def test_the_public_names_and_a_light_core() -> None:
    """`from reranker import ...` keeps working, and the core and the workbench on a server never load torch (about
    400 MB a process), nor anything that loads a model; Qwen3Reranker loads it when first named."""
    import subprocess
    import sys

    code = ("import sys; from reranker import Query, Judgement, RerankBackend, open_backend, explain; "
            "import reranker.core.backend, reranker.formats.exports, reranker.workbench.frame, "
            "reranker.workbench.results, reranker.workbench.batch_scoring, reranker.workbench.comparison, "
            "reranker.workbench.charts, reranker.workbench.job_panel, reranker.workbench.run_models, reranker.remote; "
            "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    from reranker import Qwen3Reranker, RerankBackend

    assert issubclass(Qwen3Reranker, RerankBackend)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_imports(path: Path) -> None:
    """Each module's imports name things that exist (a moved name fails here, not in a user's hands)."""
    import importlib

    if path.name != "__main__.py":
        importlib.import_module(module_name(path))


def test_the_workbench_names_its_modules_and_which_draw() -> None:
    """workbench/__init__'s docstring lists every module once, under whether it imports Streamlit."""
    import reranker.workbench

    doc = reranker.workbench.__doc__ or ""
    drawn, plain = (doc.split(heading, 1)[1].split(".\n", 1)[0] for heading in ("Drawn with Streamlit:",
                                                                                 "Plain Python"))
    listed = {name: set(re.findall(r"`(\w+)`", text)) for name, text in (("drawn", drawn), ("plain", plain))}
    modules = {p.stem: "streamlit" in {m.split(".")[0] for m in imports_of(p)}
               for p in (PACKAGE / "workbench").glob("*.py") if p.stem != "__init__"}
    assert listed == {"drawn": {m for m, draws in modules.items() if draws},
                      "plain": {m for m, draws in modules.items() if not draws}}
