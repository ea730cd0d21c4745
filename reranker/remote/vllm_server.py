"""A vLLM server running Qwen3-Reranker as a sequence classifier, through its `/score` endpoint.

Started as vLLM's docs show for the original checkpoint:
    vllm serve Qwen/Qwen3-Reranker-0.6B --runner pooling --hf_overrides '{"architectures":
    ["Qwen3ForSequenceClassification"], "classifier_from_token": ["no", "yes"], "is_original_qwen3_reranker": true}'

Request and answer follow vLLM's Score API (docs.vllm.ai, "OpenAI-Compatible Server", Score API):
    POST /score  {"model": ..., "text_1": [...], "text_2": [...]}   (lists of equal length: scored pairwise)
    200          {"id", "object": "list", "created", "model", "data": [{"index", "object": "score", "score"}], "usage"}
The prompt is applied here, as vLLM's Qwen3-Reranker example does (examples/offline_inference/qwen3_reranker.py):
text_1 is the system prompt + `<Instruct>` + `<Query>`, text_2 is `<Document>` + the assistant suffix; the server
joins them, so the instruction is honoured and the score is the model card's whatever chat template it has.

What a vLLM server does not give: token counts and truncation flags (Judgement.tokens and .truncated are None),
a per-document token cap, and safety from control tokens: user text holding `<|im_end|>` is tokenized there as
the control token, which the in-process engine never does. The score is P("yes"); the logit is derived from it.
"""

from __future__ import annotations

from reranker.core.backend import Capabilities
from reranker.core.prompt import prompt_halves
from reranker.core.ranking import Judgement, Query
from reranker.remote.remote_backend import RemoteBackend, logit_of


class VllmScoreBackend(RemoteBackend):
    kind = "vLLM server"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self.kind, f"server {self.connection.shown}", query_options=frozenset(),
                            token_counts=False)

    def _judge(self, queries: list[Query]) -> list[list[Judgement]]:
        halves = [prompt_halves(q.query, d, q.instruction) for q in queries for d in q.documents]
        body = {"model": self.model_name, "text_1": [a for a, _ in halves], "text_2": [b for _, b in halves]}
        answer = self.connection.post("/score", body)
        data = answer.get("data") if isinstance(answer, dict) else None
        scores = self.in_input_order("/score", data, len(halves), lambda item: float(item["score"]))
        judged, start = [], 0
        for q in queries:
            judged.append([Judgement(s, logit_of(s), None, None) for s in scores[start:start + len(q.documents)]])
            start += len(q.documents)
        return judged
