"""A Rerank result kept on disk or in a file: the inputs, the model and every document's judgement, so opening it
shows the ranking again without scoring; and a Compare result as JSON, for the page's history (workbench.drafts).

Saved sessions live in `<data folder>/sessions/<id>.json` (the data folder is RERANKER_DATA_DIR, the sidecar's,
default ./data); the same JSON is what the page downloads and uploads.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reranker.core.environment import DATA_DIR
from reranker.core.ranking import Judgement, Passage, RankedDocument, rank_judgements
from reranker.formats.documents import ParsedDocuments, parse_documents
from reranker.workbench.comparison import CompareRun, Comparison
from reranker.workbench.document_blocks import parsed_as
from reranker.workbench.results import Ranking

FORMAT = "qwen-ranker-pro session"
COMPARISON_FORMAT = "qwen-ranker-pro comparison"
VERSION = 1
MAX_SESSION_BYTES = 50 * 1024 * 1024
_SESSION_ID = re.compile(r"[0-9a-f]{16}")


class SessionError(ValueError):
    """A saved session that cannot be opened; the message says why, for the person opening it."""


@dataclass(frozen=True)
class SavedSession:
    ranking: Ranking
    documents_text: str
    """The documents box as it was (labels included), so the page shows exactly what was ranked."""
    saved_at: str
    """ISO 8601, UTC."""
    id: str | None = None


def data_folder() -> Path:
    return DATA_DIR.read()


def session_json(ranking: Ranking, documents_text: str, saved_at: str | None = None, id: str | None = None) -> str:
    """The session as JSON: what was asked, and each input document's judgement in input order."""
    return json.dumps({"format": FORMAT, "version": VERSION, "id": id, "saved_at": saved_at or _now(),
                       "model": ranking.model, "query": ranking.query, "instruction": ranking.instruction,
                       "documents_text": documents_text, "passage_tokens": ranking.passage_tokens,
                       "blocks": ranking.blocks,
                       "judgements": _judgements_json(ranking.ranked)}, ensure_ascii=False, indent=1)


def session_from_json(data: bytes | str) -> SavedSession:
    """A session read back; SessionError when it is not one, or does not add up."""
    if len(data) > MAX_SESSION_BYTES:
        raise SessionError(f"the file is over {MAX_SESSION_BYTES // 2**20} MB; a saved session is much smaller")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise SessionError(f"this is not a saved session (it is not JSON: {e})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise SessionError("this is not a saved session of Qwen-Ranker Pro (no \"format\": \"" + FORMAT + "\")")
    if body.get("version") != VERSION:
        raise SessionError(f"this session was saved by another version of the workbench (version "
                           f"{body.get('version')!r}; this one reads {VERSION})")
    try:
        documents_text = str(body["documents_text"])
        blocks = bool(body.get("blocks"))
        parsed = parsed_as(documents_text, blocks)
        passages = int(body["passage_tokens"]) if body.get("passage_tokens") else None
        ranking = Ranking(str(body["model"]), str(body["query"]), str(body["instruction"]), parsed,
                          _ranked(parsed, body["judgements"]), passages, blocks)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, SessionError):
            raise
        raise SessionError(f"the session is incomplete or damaged ({type(e).__name__}: {e})") from None
    return SavedSession(ranking, documents_text, str(body.get("saved_at") or "an unknown time"), body.get("id"))


def comparison_json(comparison: Comparison, documents_text: str) -> str:
    """A Compare result as JSON: what was asked, and each run's judgements in input order."""
    return json.dumps({"format": COMPARISON_FORMAT, "version": VERSION, "saved_at": _now(),
                       "query": comparison.query, "documents_text": documents_text,
                       "passage_tokens": comparison.passage_tokens,
                       "runs": [{"name": run.name, "model": run.model, "where": run.where,
                                 "instruction": run.instruction, "judgements": _judgements_json(run.ranked)}
                                for run in comparison.runs]},
                      ensure_ascii=False)


def comparison_from_json(data: str) -> Comparison:
    """A Compare result read back; SessionError when it is not one."""
    try:
        body = json.loads(data)
        if body.get("format") != COMPARISON_FORMAT or body.get("version") != VERSION:
            raise SessionError("this is not a comparison of this version of the workbench")
        parsed = parse_documents(str(body["documents_text"]))
        runs = [CompareRun(str(run["name"]), str(run["instruction"]), _ranked(parsed, run["judgements"]),
                           str(run["model"]), str(run.get("where") or "")) for run in body["runs"]]
        passages = int(body["passage_tokens"]) if body.get("passage_tokens") else None
        return Comparison(str(body["query"]), parsed, runs, passages)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, SessionError):
            raise
        raise SessionError(f"the comparison is incomplete or damaged ({type(e).__name__}: {e})") from None


def _judgements_json(ranked: list[RankedDocument]) -> list[dict[str, object]]:
    """Each document's judgement in input order."""
    judgements: list[dict[str, object]] = [{}] * len(ranked)
    for d in ranked:
        judgements[d.index] = {"score": d.score, "logit": d.logit, "tokens": d.tokens, "truncated": d.truncated,
                               "passages": [[p.start, p.end, p.score, p.logit] for p in d.passages or ()] or None}
    return judgements


def _ranked(parsed: ParsedDocuments, judged: object) -> list[RankedDocument]:
    if not isinstance(judged, list) or len(judged) != parsed.count:
        held = len(judged) if isinstance(judged, list) else 0
        raise SessionError(f"it holds {held or 'no'} judgement{'' if held == 1 else 's'} for {parsed.count:,} "
                           f"document{'' if parsed.count == 1 else 's'}")
    judgements = [Judgement(float(j["score"]), float(j["logit"]), j.get("tokens"), j.get("truncated"),
                            tuple(Passage(int(a), int(b), float(s), float(g)) for a, b, s, g in j["passages"])
                            if j.get("passages") else None)
                  for j in judged]
    return rank_judgements(parsed.documents, judgements)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save_session(ranking: Ranking, documents_text: str, folder: Path | None = None) -> SavedSession:
    """Write the session under a new id (written whole or not at all) and return it."""
    sessions = (folder or data_folder()) / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    session_id = secrets.token_hex(8)
    text = session_json(ranking, documents_text, id=session_id)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=sessions, suffix=".tmp", delete=False) as out:
        out.write(text)
    os.replace(out.name, sessions / f"{session_id}.json")
    return session_from_json(text)


def open_session(session_id: str, folder: Path | None = None) -> SavedSession:
    """The saved session `session_id`; SessionError when there is none."""
    if not _SESSION_ID.fullmatch(session_id):
        raise SessionError(f"{session_id[:40]!r} is not a session id (16 hexadecimal characters)")
    path = (folder or data_folder()) / "sessions" / f"{session_id}.json"
    try:
        return session_from_json(path.read_bytes())
    except FileNotFoundError:
        raise SessionError(f"session {session_id} was not found: no session of that id is saved on this "
                           "workbench (it may have been saved on another one)") from None
