"""Finding the model (hub id or local folder), the device and the dtype; one clear error when it fails."""

from __future__ import annotations

import functools
import os
from collections.abc import Collection
from pathlib import Path
from typing import Literal

import requests
import torch
import transformers
from huggingface_hub import snapshot_download, try_to_load_from_cache
from packaging.version import Version
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from reranker.core.environment import DEVICE, DTYPE
from reranker.core.failures import ModelLoadError
from reranker.core.model_names import DTYPE_NAMES, FAST, INT8, KNOWN_MODELS
from reranker.engine.int8 import quantize_linear_layers
from reranker.engine.streaming import load_int8

HUB_CHECK_SECONDS = 5.0


def resolve_device(device: str | None) -> torch.device:
    device = device or DEVICE.read()
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from e
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but this torch sees no CUDA GPU")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype | Literal["int8"]:
    """auto: bfloat16 on CUDA (the model's own dtype), float32 elsewhere (exact on CPU, safe on MPS); "int8" is
    the approximate CPU mode (engine/int8.py), chosen, never picked by auto; "fast": on a CPU the approximate mode
    fastest on it (`fast_dtype`), on CUDA bfloat16, elsewhere float32."""
    dtype = dtype or DTYPE.read()
    if isinstance(dtype, torch.dtype):
        return dtype
    dtype = dtype.strip().lower()
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    name = DTYPE_NAMES.get(dtype)
    if name is None:
        raise ValueError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16, float16, int8 (CPU) or fast")
    if name == FAST:
        return fast_dtype(cpu_flags()) if device.type == "cpu" else torch.bfloat16 if device.type == "cuda" \
            else torch.float32
    if name == INT8 and device.type != "cpu":
        raise ValueError(f"dtype int8 is the approximate mode for CPUs; on {device.type} use auto (bfloat16 on "
                         "CUDA) or float32")
    return INT8 if name == INT8 else getattr(torch, name)


NATIVE_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""CPU flags (as /proc/cpuinfo names them) of native bfloat16 arithmetic: with one of them bfloat16 ran 2.96x float32
with a third of int8's drift; without, bfloat16 ran 0.37x float32 and int8 is the fast mode (docs/BENCHMARKS.md)."""


def fast_dtype(flags: Collection[str]) -> torch.dtype | Literal["int8"]:
    """dtype "fast" on a CPU with these flags: bfloat16 where it multiplies bfloat16 natively, else int8."""
    return torch.bfloat16 if NATIVE_BFLOAT16_FLAGS & set(flags) else INT8


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags, read once: /proc/cpuinfo's (Linux); elsewhere none are known, so "fast" is int8."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def load_model(
    model: str, device: torch.device, dtype: torch.dtype | Literal["int8"]
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The tokenizer and the model; in int8, its decoder's linear layers quantized (read straight into int8 from
    safetensors files, engine/streaming.py; else loaded in float32 and quantized)."""
    source = Path(model).expanduser()
    is_local = source.is_dir() or model.startswith((".", "/", "~"))
    try:
        cache_only = not is_local and not _hub_reachable(model)
        tokenizer = AutoTokenizer.from_pretrained(str(source) if is_local else model, local_files_only=cache_only)
        lm = _int8_model(model, source if is_local else None, cache_only) if dtype == INT8 else None
        if lm is None:
            kwargs = {dtype_kwarg(): torch.float32 if dtype == INT8 else dtype, "local_files_only": cache_only}
            lm = AutoModelForCausalLM.from_pretrained(str(source) if is_local else model, **kwargs)
            if dtype == INT8:
                quantize_linear_layers(lm.get_decoder())
    except Exception as e:  # noqa: BLE001 - every failure becomes one explained error
        raise ModelLoadError(_explain(model, source, is_local, e)) from e
    return tokenizer, lm.to(device).eval()


def _int8_model(model: str, folder: Path | None, cache_only: bool) -> PreTrainedModel | None:
    """The model read straight into int8 from its safetensors files (a hub model's from the local cache, fetched
    there first when missing); None when it has none."""
    if folder is None:
        folder = Path(snapshot_download(model, allow_patterns=["*.json", "*.safetensors"], local_files_only=cache_only))
    return load_int8(folder)


MODEL_IS_SET_BY = "the workbench's Model field in the sidebar, --model, or RERANKER_MODEL"


class HubUnreachable(OSError):
    """The hub (or HF_ENDPOINT's mirror) does not answer, and the model is not in the local cache."""


def _hub_reachable(model: str) -> bool:
    """Whether to ask the hub. Asked for a model it cannot reach, transformers retries for about a minute before
    failing; one short request tells that in seconds. Unreachable but cached: load from the cache."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return False
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    try:
        requests.head(endpoint, timeout=HUB_CHECK_SECONDS)
        return True
    except requests.RequestException as e:
        if try_to_load_from_cache(model, "config.json") is None:
            raise HubUnreachable(f"the hub at {endpoint} cannot be reached ({type(e).__name__}) and the model is "
                                 "not in the local cache") from None
        return False


def dtype_kwarg() -> str:
    """The name from_pretrained gives the dtype argument in this transformers."""
    return "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


def _explain(model: str, source: Path, is_local: bool, error: Exception) -> str:
    said = str(error).strip().splitlines()[0].strip().rstrip(".") if str(error).strip() else ""
    reason = f"{type(error).__name__}: {said}" if said else type(error).__name__
    if is_local:
        where = f"the local folder {source.resolve()}"
        if not source.is_dir():
            where += " (it does not exist)"
        fix = ("give a folder holding config.json, the tokenizer files and the weights (*.safetensors), e.g. one "
               "made by: huggingface-cli download Qwen/Qwen3-Reranker-0.6B --local-dir ./models/qwen3-reranker-0.6b "
               f"({MODEL_IS_SET_BY})")
    else:
        cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
        where = (f"the Hugging Face hub id {model!r} (local cache {cache}"
                 f"{'; HF_HUB_OFFLINE=1 is set, so the hub was not asked' if offline else ''})")
        fix = (f"download it once where the hub is reachable (huggingface-cli download {model}), "
               f"or give a local folder with the model ({MODEL_IS_SET_BY}), "
               "or set HF_ENDPOINT to a mirror of the hub; check the id for typos "
               f"(known: {', '.join(KNOWN_MODELS)})")
    return f"Could not load the reranker model {model!r}. Looked in {where}. Reason: {reason}. Fix: {fix}."
