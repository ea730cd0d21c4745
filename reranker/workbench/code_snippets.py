"""A ranking on the page as the request a program sends for it: curl and Python (requests) against a Qwen-Ranker
server's `POST /api/rerank`, the key left in the environment variable the server reads (RERANKER_API_KEY)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reranker.core.environment import API_KEY

KEY_VARIABLE = API_KEY.name


def rerank_body(query: str, documents: Sequence[str], instruction: str | None = None,
                passage_tokens: int | None = None) -> dict[str, object]:
    """The /api/rerank body that asks what the page asked (no field for what is left at its default)."""
    body: dict[str, object] = {"queries": [query], "documents": [list(documents)]}
    if instruction:
        body["instruction"] = instruction
    if passage_tokens:
        body["passage_tokens"] = passage_tokens
    return body


def curl_command(base_url: str, body: dict[str, object], keyed: bool) -> str:
    """A shell command; the body comes from a quoted here-document, so no character in a document needs escaping."""
    key = f' \\\n  -H "Authorization: Bearer ${KEY_VARIABLE}"' if keyed else ""
    return (f"curl -s {base_url.rstrip('/')}/api/rerank -H 'Content-Type: application/json'{key} \\\n"
            f"  --data-binary @- <<'JSON'\n{json.dumps(body, ensure_ascii=False, indent=1)}\nJSON")


def python_code(base_url: str, body: dict[str, object], keyed: bool) -> str:
    """A Python script with requests that prints the ranking, best first."""
    headers = (f', headers={{"Authorization": "Bearer " + os.environ.get({KEY_VARIABLE!r}, "")}}' if keyed else "")
    return "\n".join([
        *(["import os", ""] if keyed else []),
        "import requests",
        "",
        f"body = {json.dumps(body, ensure_ascii=False, indent=4)}",
        f"answer = requests.post({base_url.rstrip('/') + '/api/rerank'!r}, json=body{headers}, timeout=120)",
        "answer.raise_for_status()",
        'for item in answer.json()["results"][0]:',
        '    print(item["rank"], round(item["score"], 4), item["document"][:80])',
    ])
