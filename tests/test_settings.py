"""Every RERANKER_* variable is declared and read in one module (reranker/core/environment.py): no other code reads
one from the environment, every name the code and docs mention is declared there, README's "Settings" table is the
module's, and a value that cannot be used is refused naming its variable."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from reranker.core import environment
from reranker.core.environment import (
    VARIABLES,
    SettingsError,
    Variable,
    as_count,
    as_flag,
    as_seconds,
    listening_host,
    markdown_table,
    set_listening_host,
)
from reranker.sidecar.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "reranker" / "core" / "environment.py"
CODE = sorted([*(ROOT / "reranker").rglob("*.py"), *(ROOT / "views").glob("*.py"), ROOT / "app.py"])
"""Where the rule holds: the package, the pages and their entry. (tests/ may read the tests' own variables.)"""
MENTIONS = [*CODE, *(p for p in (ROOT / "tests").glob("*.py") if p.name != Path(__file__).name),
            *(ROOT / "bench").glob("*.py"), ROOT / "start.sh", ROOT / ".ci" / "run", ROOT / "README.md",
            *(ROOT / "docs").glob("*.md")]
"""Where a variable may be named: all of it but this file, whose examples are not variables."""
NAME = re.compile(r"(?<![A-Za-z0-9_])RERANKER_[A-Z0-9_]+")
DECLARED = {v.name: v for v in VARIABLES}
README_HEADER = "| variable | default | meaning |"


def environment_reads(source: str) -> list[str]:
    """Each place `source` reads or writes a RERANKER_ variable itself, as "line N: NAME": `os.environ.get(NAME)`,
    `os.getenv(NAME)`, `os.environ[NAME]`, `NAME in os.environ`, and `.get(NAME)` / `[NAME]` on any mapping (a
    copy of the environment is the environment too)."""
    found = []

    def named(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
            return node.value
        return None

    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Call) and node.args:
            function = node.func
            called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
            if called in ("get", "getenv", "pop", "setdefault", "putenv", "unsetenv"):
                name = named(node.args[0])
        elif isinstance(node, ast.Subscript):
            name = named(node.slice)
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            name = named(node.left) if "environ" in ast.unparse(node.comparators[0]) else None
        if name:
            found.append(f"line {node.lineno}: {name}")
    return found


def test_the_detector_sees_each_way_of_reading_the_environment() -> None:
    source = """
import os
a = os.environ.get("RERANKER_A")
b = os.getenv("RERANKER_B", "x")
c = os.environ["RERANKER_C"]
os.environ["RERANKER_D"] = "written"
e = "RERANKER_E" in os.environ
env = dict(os.environ)
f = env.get("RERANKER_F")
ok = os.environ.get("HF_ENDPOINT"), "the message names RERANKER_G", print("RERANKER_H")
"""
    assert environment_reads(source) == ["line 3: RERANKER_A", "line 4: RERANKER_B", "line 5: RERANKER_C",
                                         "line 6: RERANKER_D", "line 7: RERANKER_E", "line 9: RERANKER_F"]


def test_no_code_reads_a_reranker_variable_but_the_environment_module() -> None:
    assert MODULE in CODE
    found = {str(path.relative_to(ROOT)): reads for path in CODE if path != MODULE
             if (reads := environment_reads(path.read_text(encoding="utf-8")))}
    assert found == {}, ("read these through reranker.core.environment (declare the variable there, then "
                         "`NAME.read()`)")


def test_every_variable_named_in_the_code_and_docs_is_declared() -> None:
    mentioned: dict[str, set[str]] = {}
    for path in MENTIONS:
        for name in NAME.findall(path.read_text(encoding="utf-8")):
            mentioned.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    undeclared = {name: sorted(where) for name, where in mentioned.items() if name not in DECLARED}
    assert undeclared == {}, "declare each in reranker/core/environment.py (or fix the name's spelling)"


def test_every_declared_variable_is_read_where_it_says() -> None:
    """A declaration nobody reads is a setting that does nothing: each is read by the code (`X.read(`), start.sh or
    the tests, as its `read_by` says."""
    identifier = {id(v): name for name, v in vars(environment).items() if isinstance(v, Variable)}
    python = "\n".join(p.read_text(encoding="utf-8") for p in CODE)
    texts = {"python": python, "start.sh": (ROOT / "start.sh").read_text(encoding="utf-8"),
             "tests": python + "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("*.py"))}
    unread = []
    for variable in VARIABLES:
        if variable.read_by == "python":
            read = re.search(rf"\b{identifier[id(variable)]}\.read\(", python)
        elif variable.read_by == "start.sh":
            read = re.search(rf"\$\{{{variable.name}\b", texts["start.sh"])
        else:
            read = re.search(rf"\b({identifier[id(variable)]}\.read\(|{variable.name}\b)", texts["tests"])
        if not read:
            unread.append(f"{variable.name} (read_by={variable.read_by})")
    assert unread == []


def readme_tables(text: str) -> list[list[str]]:
    """README's tables that begin with the Settings header, each as its lines."""
    lines = text.splitlines()
    tables = []
    for start, line in enumerate(lines):
        if line.strip() == README_HEADER:
            end = start
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            tables.append(lines[start:end])
    return tables


def test_the_readme_settings_table_is_the_module_s() -> None:
    tables = readme_tables((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(tables) == 1, f"README.md should have one table headed {README_HEADER!r}, has {len(tables)}"
    listed = [re.match(r"\| `([^`]+)` \|", row).group(1) for row in tables[0][2:]]
    assert listed == [v.name for v in VARIABLES]
    assert tables[0] == markdown_table().splitlines(), (
        "README's Settings table differs from reranker/core/environment.py's: paste the output of "
        "`python -m reranker.core.environment --markdown` over it")


def test_the_docs_give_each_variable_the_module_s_default() -> None:
    """Other docs' tables (docs/API.md's limits) may repeat a variable; its default must then be the module's."""
    wrong = []
    for path in (ROOT / "docs").glob("*.md"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = re.match(r"\| `(RERANKER_[A-Z0-9_]+)` \| ([^|]+) \|", line)
            if row and DECLARED[row.group(1)].default_text != row.group(2).strip():
                wrong.append(f"{path.name}: {row.group(1)} says {row.group(2).strip()!r}, the module "
                             f"{DECLARED[row.group(1)].default_text!r}")
    assert wrong == []


def test_the_markdown_command_prints_the_table() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "reranker.core.environment", "--markdown"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == markdown_table()


CHECKED = [v for v in VARIABLES if v.parse in (as_count, as_seconds, as_flag)]


@pytest.mark.parametrize("variable", CHECKED, ids=lambda v: v.name)
def test_a_bad_value_names_its_variable(variable: Variable, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable.name, "lots")
    with pytest.raises(SettingsError, match=f"^{variable.name}='lots' is not"):
        variable.read()


def test_values_out_of_range_name_their_variable() -> None:
    with pytest.raises(SettingsError, match="RERANKER_MAX_QUEUE='0' must be at least 1"):
        environment.MAX_QUEUE.read({"RERANKER_MAX_QUEUE": "0"})
    with pytest.raises(SettingsError, match="RERANKER_SLICE_SECONDS='-1' may not be negative"):
        environment.SLICE_SECONDS.read({"RERANKER_SLICE_SECONDS": "-1"})
    with pytest.raises(SettingsError, match="RERANKER_CORS_ORIGINS may not be '\\*'"):
        environment.CORS_ORIGINS.read({"RERANKER_CORS_ORIGINS": "https://a.example, *"})


def test_the_sidecar_settings_refuse_a_bad_value_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANKER_JOB_CHUNK_DELAY", "soon")
    with pytest.raises(SettingsError, match="RERANKER_JOB_CHUNK_DELAY"):
        Settings.from_env()


def test_values_are_read_typed_and_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read when asked, not at import: a test (or a process) that sets a variable later is seen."""
    monkeypatch.delenv("RERANKER_MAX_DOCUMENTS", raising=False)
    assert environment.MAX_DOCUMENTS.read() == 1000
    monkeypatch.setenv("RERANKER_MAX_DOCUMENTS", " 10_000 ")
    assert environment.MAX_DOCUMENTS.read() == 10_000
    monkeypatch.setenv("RERANKER_MAX_DOCUMENTS", "")  # empty is unset
    assert environment.MAX_DOCUMENTS.read() == 1000
    assert environment.ALLOW_OPEN.read({"RERANKER_ALLOW_OPEN": "Yes"}) is True
    assert environment.EXTRA_MODELS.read({"RERANKER_EXTRA_MODELS": " a, ,b "}) == ("a", "b")
    assert environment.SERVER.read({"RERANKER_SERVER": "  "}) is None
    assert environment.DATA_DIR.read({}) == Path("data")
    assert environment.API_KEY.read({"RERANKER_API_KEY": " spaced "}) == " spaced "  # a key is kept as it is


def test_the_sidecar_settings_defaults_are_the_module_s() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings().max_body_bytes == environment.MAX_BODY_BYTES.default == 10 * 1024 * 1024
    assert Settings().data_dir == environment.DATA_DIR.default


@pytest.fixture
def no_listening_host():
    set_listening_host(None)
    yield
    set_listening_host(None)


def test_the_pages_learn_the_address_from_the_server_that_runs_them(no_listening_host, monkeypatch) -> None:
    """`python -m reranker workbench --host 0.0.0.0` runs the pages in its own process: sidecar.one_port.run tells them
    the address (the CLI no longer writes RERANKER_HOST into the environment)."""
    from reranker.sidecar.one_port import run

    monkeypatch.delenv("RERANKER_HOST", raising=False)
    assert listening_host() == "127.0.0.1"
    monkeypatch.setenv("RERANKER_HOST", "0.0.0.0")
    assert listening_host() == "0.0.0.0"  # `streamlit run app.py` with RERANKER_HOST set

    class Server:
        def run(self, config: dict) -> None:
            self.config = config

    server = Server()
    monkeypatch.setattr("sys.argv", ["pytest"])
    run(server, "192.0.2.7", 8599)
    assert server.config["server.address"] == "192.0.2.7" and listening_host() == "192.0.2.7"


def test_pages_started_beyond_loopback_with_a_key_ask_for_it(no_listening_host, monkeypatch) -> None:
    def page() -> None:
        import streamlit as st

        from reranker.workbench.frame import unlocked

        if unlocked():
            st.write("the page")

    monkeypatch.delenv("RERANKER_HOST", raising=False)
    monkeypatch.setenv("RERANKER_API_KEY", "the-key")
    assert not AppTest.from_function(page).run().info  # on loopback the page is open
    set_listening_host("0.0.0.0")
    at = AppTest.from_function(page).run()
    assert not at.exception and "asks for its key" in at.info[0].value
