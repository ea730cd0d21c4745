"""The approximate CPU mode (dtype "int8"): the decoder's linear layers multiply in int8.

Weights are quantized once at load, one scale per output channel; activations at each call, one scale per token
(row), so a document's score never depends on which other documents share its forward pass. The products are
exact integer matrix products (`torch._int_mm`: oneDNN's int8 kernels, VNNI where the CPU has it), rescaled to
float32. Everything else (embeddings, norms, attention, rotary embeddings, the key/value cache) stays float32, and
the yes/no head (engine/yes_no_head.py) copies its two rows from the float32 weights before the decoder is
quantized, and is never quantized itself: a quantized score head gave all-zero or 0.5 scores in other engines.
Measured against float32 in docs/BENCHMARKS.md ("The approximate CPU mode").
"""

from __future__ import annotations

import torch

from reranker.core.model_names import INT8

__all__ = ["INT8", "Int8Linear", "quantize_linear_layers"]

_LEVELS = 127.0


class Int8Linear(torch.nn.Module):
    """A torch.nn.Linear whose product runs in int8: symmetric, per output channel for the weight, per row for the
    input."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / _LEVELS
        quantized = (weight / scale[:, None]).round().clamp(-_LEVELS, _LEVELS).to(torch.int8)
        self.register_buffer("weight_t", quantized.t())  # (in, out): the layout torch._int_mm multiplies by
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()
        row_scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny) / _LEVELS
        quantized = (rows / row_scale).round().to(torch.int8)
        out = torch._int_mm(quantized, self.weight_t).float() * row_scale * self.weight_scale
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def quantize_linear_layers(module: torch.nn.Module) -> torch.nn.Module:
    """`module` with every torch.nn.Linear inside it replaced, in place, by an Int8Linear (the float32 weights let
    go)."""
    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, Int8Linear(child))
        else:
            quantize_linear_layers(child)
    return module
