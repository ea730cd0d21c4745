"""The page's "use it from code": the curl command and the Python script it shows, run as a user would paste them
(bash, a Python process) against a live keyed server, give the page's ranking."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import SIDECAR_KEY

from reranker.workbench.code_snippets import curl_command, python_code, rerank_body

QUERY = "What's the capital of China? \"Beijing\" or 'Nanjing'?"
DOCUMENTS = ["The capital of China is Beijing.", "It costs $HOME and `uname` and $(id) — nothing runs.",
             "北京是中国的首都。", "JSON", "Line with a backslash \\ and a tab\tinside."]


def test_the_curl_command_and_python_script_rank_as_the_page_did(keyed_sidecar, reranker) -> None:
    body = rerank_body(QUERY, DOCUMENTS, "Given a question, find the passage that answers it")
    expected = reranker.rank(QUERY, DOCUMENTS, "Given a question, find the passage that answers it")
    env = {**os.environ, "RERANKER_API_KEY": SIDECAR_KEY}

    curl = subprocess.run(["bash", "-c", curl_command(keyed_sidecar.url, body, keyed=True)], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    answered = json.loads(curl.stdout)["results"][0]
    assert [item["document"] for item in answered] == [d.document for d in expected]

    script = subprocess.run([sys.executable, "-c", python_code(keyed_sidecar.url, body, keyed=True)], env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    lines = script.stdout.splitlines()
    assert [line.split(" ", 2)[0] for line in lines] == [str(n) for n in range(1, len(DOCUMENTS) + 1)]
    assert [line.split(" ", 2)[2] for line in lines] == [d.document[:80] for d in expected]


def test_without_a_key_there_is_no_key_in_the_snippets() -> None:
    body = rerank_body("q", ["d"], passage_tokens=256)
    assert body == {"queries": ["q"], "documents": [["d"]], "passage_tokens": 256}
    assert "Authorization" not in curl_command("http://box:8501/", body, keyed=False)
    assert "os.environ" not in python_code("http://box:8501", body, keyed=False)
