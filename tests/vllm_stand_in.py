"""A small server that answers as vLLM 0.32 does for a Qwen3-Reranker served with `--runner pooling` and the
`is_original_qwen3_reranker` overrides: GET /v1/models, GET /health, POST /score and /v1/score, /tokenize and
/detokenize, errors as `{"error": {"message", "type", "param", "code"}}`.

The real vLLM is tested too (tests/test_real_vllm.py), but takes a minute and a half to start; this answers at once,
and can be told to fail, for the client's handling of faults. For each pair it joins text_1 and
text_2, tokenizes the result as a plain prompt (control tokens typed as text become control tokens, as in vLLM)
and returns sigmoid(logit_yes - logit_no) at the last position of one full forward pass: the engine's arithmetic
without its prefix reuse. Faults can be injected to test the client's handling of them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from transformers import AutoModelForCausalLM, AutoTokenizer

from reranker.testing.sidecar_process import free_port


class VllmStandIn:
    def __init__(self, model_dir: str, served_name: str = "Qwen/Qwen3-Reranker-0.6B", key: str | None = None) -> None:
        self.served_name = served_name
        self.key = key
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.yes = self.tokenizer.convert_tokens_to_ids("yes")
        self.no = self.tokenizer.convert_tokens_to_ids("no")
        self.faults: deque[tuple[int, dict[str, str]]] = deque()
        """(status, headers) answered to the next /score requests, one each."""
        self.max_pairs: int | None = None
        """More pairs than this in one request get 413."""
        self.malformed = False
        self.requests: list[dict[str, Any]] = []
        self.port = free_port()
        self.app = self._app()
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> VllmStandIn:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def score(self, text_1: str, text_2: str) -> float:
        ids = self.tokenizer(text_1 + text_2, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.inference_mode():
            last = self.model(input_ids=ids).logits[0, -1]
        return torch.sigmoid(last[self.yes] - last[self.no]).item()

    def _app(self) -> FastAPI:
        app = FastAPI()

        def error(status: int, message: str, kind: str = "BadRequestError") -> JSONResponse:  # vLLM's ErrorResponse
            return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}},
                                status_code=status)

        def refused(request: Request) -> JSONResponse | None:
            if self.key and request.headers.get("authorization") != f"Bearer {self.key}":
                return JSONResponse({"error": "Unauthorized"}, status_code=401)
            return None

        @app.get("/health")
        def health() -> dict:
            return {}

        @app.get("/v1/models")
        def models(request: Request) -> Any:
            return refused(request) or {"object": "list", "data": [
                {"id": self.served_name, "object": "model", "created": 0, "owned_by": "vllm", "max_model_len": 40960}]}

        @app.post("/score")
        @app.post("/v1/score")
        async def score(request: Request) -> Any:
            if (answer := refused(request)) is not None:
                return answer
            body = await request.json()
            self.requests.append(body)
            if self.faults:
                status, headers = self.faults.popleft()
                return JSONResponse({"error": {"message": "injected", "type": "Injected", "param": None,
                                               "code": status}}, status, headers)
            if body.get("model") != self.served_name:
                return error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
            text_1, text_2 = body["text_1"], body["text_2"]
            if isinstance(text_1, str):
                text_1 = [text_1] * (len(text_2) if isinstance(text_2, list) else 1)
            if isinstance(text_2, str):
                text_2 = [text_2]
            if len(text_1) != len(text_2):
                return error(400, "text_1 and text_2 differ in length")
            if self.max_pairs is not None and len(text_2) > self.max_pairs:
                return error(413, f"at most {self.max_pairs} pairs")
            if self.malformed:
                return {"object": "list", "data": "nothing"}
            scores = [self.score(a, b) for a, b in zip(text_1, text_2)]
            tokens = sum(len(self.tokenizer(a + b).input_ids) for a, b in zip(text_1, text_2))
            return {"id": "score-test", "object": "list", "created": int(time.time()), "model": self.served_name,
                    "data": [{"index": i, "object": "score", "score": s} for i, s in enumerate(scores)],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0}}

        @app.post("/tokenize")
        async def tokenize(request: Request) -> Any:
            if (answer := refused(request)) is not None:
                return answer
            body = await request.json()
            tokens = self.tokenizer(body["prompt"], add_special_tokens=False).input_ids
            return {"count": len(tokens), "max_model_len": 40960, "tokens": tokens}

        @app.post("/detokenize")
        async def detokenize(request: Request) -> Any:
            if (answer := refused(request)) is not None:
                return answer
            return {"prompt": self.tokenizer.decode((await request.json())["tokens"])}

        return app
