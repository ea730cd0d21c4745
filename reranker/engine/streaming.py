"""Loading a checkpoint straight into int8 (engine/int8.py), one tensor at a time, never holding a float32 model.

The model is built on the meta device (no memory), then each tensor of the safetensors files is read on its own and
put in place: a decoder linear layer's weight is quantized as it arrives and its read copy let go; the embeddings
stay in the checkpoint's dtype (bfloat16 for the published models), widened to float32 row by row as tokens are
looked up, which gives the very values a float32 load holds, so scores do not move; norms are float32, as a float32
load has them. The peak is the int8 weights, the embeddings, and one tensor being converted. Each tensor is read
from a file opened for it alone, so the pages read stay in the page cache, not in this process's memory.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from reranker.engine.int8 import Int8Linear


class WidenedEmbedding(torch.nn.Module):
    """An embedding table kept in the checkpoint's dtype whose looked-up rows come out float32."""

    def __init__(self, weight: torch.Tensor, padding_idx: int | None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        self.padding_idx = padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding(ids, self.weight, self.padding_idx).float()


def safetensors_files(folder: Path) -> list[Path]:
    """The checkpoint's safetensors files (one, or the shards its index names); [] when it has none."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return [folder / name for name in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def load_int8(folder: Path) -> PreTrainedModel | None:
    """The model in `folder` with its decoder's linear layers in int8, read tensor by tensor; None when the folder
    has no safetensors files or they do not name this architecture's weights (then load it whole and quantize)."""
    files = safetensors_files(folder)
    if not files:
        return None
    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    expected = {name for name, _ in model.named_parameters()}  # a tied head is named once
    if not expected <= set(_names(files)):
        return None
    _rebuild_meta_buffers(model)
    decoder = model.get_decoder()
    decoder_prefix = next(name for name, module in model.named_modules() if module is decoder)
    pending: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in _tensors(files):
        if name not in expected:
            continue
        module_name, _, field = name.rpartition(".")
        module = model.get_submodule(module_name)
        if isinstance(module, torch.nn.Linear) and module_name.startswith(f"{decoder_prefix}."):
            parts = pending.setdefault(module_name, {})
            parts[field] = tensor
            if set(parts) == {n for n, p in module.named_parameters() if p is not None}:
                model.set_submodule(module_name, Int8Linear(parts["weight"], parts.get("bias")))
                del pending[module_name], parts
                return_freed_memory()
        elif isinstance(module, torch.nn.Embedding):
            model.set_submodule(module_name, WidenedEmbedding(tensor, module.padding_idx))
        else:  # norms float32, as a float32 load holds them; an untied LM head as stored (the yes/no head copies
            keep = tensor if module is model.get_output_embeddings() else tensor.float()  # two rows in float32)
            setattr(module, field, torch.nn.Parameter(keep, requires_grad=False))
    _tie_head(model)
    if pending or any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        return None
    return model.eval()


def return_freed_memory() -> None:
    """Hand what the process has freed back to the system (glibc's malloc_trim; elsewhere nothing). Each layer's
    read and quantized copies are freed as the next arrive, but once glibc's mmap threshold has risen (it rises after
    a large free, and threads started by another library, scipy's, make it matter) freed blocks stay in the heap:
    the full-size shape's int8 load then peaked at 2.37 GB instead of 1.11 GB."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()


def _names(files: list[Path]) -> Iterator[str]:
    for file in files:
        with safe_open(file, framework="pt") as f:
            yield from f.keys()


def _tensors(files: list[Path]) -> Iterator[tuple[str, torch.Tensor]]:
    """Each tensor of the files, read into memory of its own; the file is mapped only while one tensor is read."""
    for file in files:
        for name in list(_names([file])):
            with safe_open(file, framework="pt") as f:
                tensor = f.get_tensor(name)
            yield name, tensor


def _rebuild_meta_buffers(model: PreTrainedModel) -> None:
    """Modules whose buffers are computed, not stored (the rotary embedding's frequencies), built again for real."""
    for name, module in list(model.named_modules()):
        own = list(module.buffers(recurse=False))
        if own and all(b.is_meta for b in own) and not list(module.parameters(recurse=False)):
            model.set_submodule(name, type(module)(config=model.config))


def _tie_head(model: PreTrainedModel) -> None:
    head = model.get_output_embeddings()
    if head is not None and getattr(model.config, "tie_word_embeddings", False):
        head.weight = model.get_input_embeddings().weight
