"""A vLLM server running Qwen3-Reranker as a sequence classifier, through its `/score` endpoint.

Start it as vLLM's docs show for the original checkpoint, and without a chat template (docs/SCALING.md):
    python -m vllm.entrypoints.openai.api_server --model Qwen/Qwen3-Reranker-0.6B --runner pooling --hf-overrides
    '{"architectures": ["Qwen3ForSequenceClassification"], "classifier_from_token": ["no", "yes"],
    "is_original_qwen3_reranker": true}'

Request and answer follow vLLM's Score API: `POST /score {"model", "text_1": [...], "text_2": [...]}` (lists of
equal length, scored pairwise) answers `{"data": [{"index", "score"}], "usage": {"prompt_tokens", ...}}`. The
prompt is built here, exactly the model card's (`core/prompt.py`): text_1 is the system prompt + `<Instruct>` +
`<Query>`, text_2 `<Document>` + the assistant suffix, and the server joins them. That holds only when the server
adds nothing of its own: a server started with `--chat-template` (vLLM's Qwen3-Reranker example passes one) would
wrap the prompt a second time, so it is refused when the backend opens (`check_no_template`). Letting the server
format the prompt instead is not the card's prompt either (its template drops the final newline).

A prompt longer than the server's max_model_len is cut as the engine cuts it (the user turn's tokens from its end,
counted by the server's own /tokenize) and marked truncated, or refused (PromptTooLong) when the query asks not to
cut. What the server does not give: token counts (Judgement.tokens is None), a per-document token cap, and plain
text for control strings: vLLM reads `<|im_end|>` or `<think>` typed into a document as the control token, which
the in-process engine never does (docs/SCALING.md has the measured difference). The logit is derived from P("yes").
"""

from __future__ import annotations

from reranker.core.backend import Capabilities
from reranker.core.failures import PromptTooLong, ServerFailed, Unreachable
from reranker.core.prompt import ASSISTANT_SUFFIX, SYSTEM_PREFIX, prompt_halves, user_turn
from reranker.core.ranking import Judgement, Query
from reranker.remote.connection import ServerConnection
from reranker.remote.remote_backend import RemoteBackend, in_input_order, logit_of

TEMPLATE_PROBE_TOKENS = 8
"""A probe pair of two one-letter texts reads a token or two; a server that wraps it in a chat template reads
dozens."""


class VllmScoreBackend(RemoteBackend):
    kind = "vLLM server"

    def __init__(self, connection: ServerConnection, model_name: str, max_model_len: int | None = None,
                 **kwargs: int) -> None:
        super().__init__(connection, model_name, **kwargs)
        self.max_model_len = max_model_len
        """The longest prompt the server takes (None: not known, nothing is cut here)."""
        self._fixed_tokens: int | None = None

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self.kind, f"server {self.connection.shown}", self.connection.shown,
                            query_options=frozenset({"refuse_truncation"}))

    def check_no_template(self) -> None:
        """Refuse a server that wraps what it scores in a chat template: every score would be silently wrong."""
        answer = self.connection.post("/score", {"model": self.model_name, "text_1": "a", "text_2": "b"})
        read = (answer.get("usage") or {}).get("prompt_tokens") if isinstance(answer, dict) else None
        if isinstance(read, int) and read > TEMPLATE_PROBE_TOKENS:
            raise ServerFailed(
                f"The vLLM server at {self.connection.shown} wraps what it scores in a chat template (a pair of two "
                f"one-letter texts became a prompt of {read} tokens): the prompt this client sends, already the "
                "model card's, would be wrapped a second time and every score would be wrong. Fix: start vLLM "
                "without --chat-template (docs/SCALING.md shows the command).")

    def _judge(self, queries: list[Query]) -> list[list[Judgement]]:
        halves, cut = [], []
        for q in queries:
            for d in q.documents:
                text_1, text_2, was_cut = self._fitted(q, d)
                halves.append((text_1, text_2))
                cut.append(was_cut)
        body = {"model": self.model_name, "text_1": [a for a, _ in halves], "text_2": [b for _, b in halves]}
        answer = self.connection.post("/score", body)
        data = answer.get("data") if isinstance(answer, dict) else None
        scores = in_input_order(self.connection, "/score", data, len(halves), lambda item: float(item["score"]))
        known = self.max_model_len is not None
        judged, start = [], 0
        for q in queries:
            end = start + len(q.documents)
            judged.append([Judgement(s, logit_of(s), None, c if known else None)
                           for s, c in zip(scores[start:end], cut[start:end])])
            start = end
        return judged

    def _fitted(self, q: Query, document: str) -> tuple[str, str, bool]:
        """The pair's two texts, cut to the server's max_model_len where the engine would cut them, and whether
        they were. A prompt of no more bytes than that fits (a token is at least a byte) and is never counted."""
        text_1, text_2 = prompt_halves(q.query, document, q.instruction)
        if self.max_model_len is None or len((text_1 + text_2).encode("utf-8")) <= self.max_model_len:
            return text_1, text_2, False
        budget = self.max_model_len - self._fixed()
        turn = self._tokens(user_turn(q.query, document, q.instruction))
        if len(turn) <= budget:
            return text_1, text_2, False
        if q.refuse_truncation:
            raise PromptTooLong(f"a document does not fit the vLLM server's limit of {self.max_model_len:,} prompt "
                                f"tokens with its query and instruction (it starts {document[:40]!r}); allow "
                                "truncation, or send it shorter")
        return SYSTEM_PREFIX + self._cut_text(turn, max(budget, 0)), ASSISTANT_SUFFIX, True

    def _cut_text(self, tokens: list[int], budget: int) -> str:
        """The text of the first `budget` tokens, as few fewer as it takes for the server to read it back in
        `budget`: a cut inside a character (a byte-level token of a Chinese one, say) comes back as a replacement
        character, which the server may read as more tokens than were cut."""
        for keep in range(budget, max(budget - 8, 0) - 1, -1):
            answer = self.connection.post("/detokenize", {"model": self.model_name, "tokens": tokens[:keep]})
            text = str(answer.get("prompt", "")) if isinstance(answer, dict) else ""
            if len(self._tokens(text)) <= budget:
                return text
        raise self.connection.malformed("/detokenize", f"no cut of {budget} tokens reads back in {budget}")

    def _fixed(self) -> int:
        """Tokens of the prompt's fixed parts (system prefix, assistant suffix), counted once."""
        if self._fixed_tokens is None:
            self._fixed_tokens = len(self._tokens(SYSTEM_PREFIX)) + len(self._tokens(ASSISTANT_SUFFIX))
        return self._fixed_tokens

    def _tokens(self, text: str) -> list[int]:
        answer = self.connection.post("/tokenize", {"model": self.model_name, "prompt": text,
                                                    "add_special_tokens": False})
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            raise self.connection.malformed("/tokenize", "no tokens")
        return tokens


def open_vllm(url: str, key: str | None, timeout: float, model: str | None) -> VllmScoreBackend:
    """The vLLM server at `url` (its base address), scoring `model` (None: the first it lists): the model checked
    against what it serves, its max_model_len read, and a server that would wrap the prompt refused."""
    connection = ServerConnection(url, key, timeout, kind=VllmScoreBackend.kind)
    served = connection.get("/v1/models")
    try:
        listed = {str(m["id"]): m.get("max_model_len") for m in served["data"]}
    except (KeyError, TypeError):
        raise connection.malformed("/v1/models", "no list of models") from None
    if not listed:
        raise connection.malformed("/v1/models", "no model listed")
    name = model or next(iter(listed))
    if name not in listed:
        raise ServerFailed(f"The vLLM server at {connection.shown} does not serve the model {name!r}; it serves "
                           f"{', '.join(map(repr, listed))}. Fix: set RERANKER_SERVER_MODEL to one of those, or unset "
                           "it to use the first.")
    limit = listed[name]
    backend = VllmScoreBackend(connection, name, limit if isinstance(limit, int) else None)
    backend.check_no_template()
    return backend


def listed_models(probe: ServerConnection) -> list[dict]:
    """The models a server lists at GET /v1/models (vLLM, and OpenAI-style servers); [] when it lists none or does
    not answer."""
    try:
        status, listed = probe.probe("/v1/models")
    except Unreachable:
        return []
    if status != 200 or not isinstance(listed, dict) or not isinstance(listed.get("data"), list):
        return []
    return [m for m in listed["data"] if isinstance(m, dict)]


def is_vllm(probe: ServerConnection) -> bool:
    """Whether the server lists its models as vLLM does (`owned_by: vllm` in GET /v1/models)."""
    return listed_by_vllm(listed_models(probe))


def listed_by_vllm(models: list[dict]) -> bool:
    """Whether a listing of models (`listed_models`) is vLLM's."""
    return any(m.get("owned_by") == "vllm" for m in models)
