"""The approximate CPU mode (dtype "int8"): the decoder's linear layers multiply in int8.

Weights are quantized once at load, one scale per output channel; activations at each call, one scale per token
(row), so a document's score never depends on which other documents share its forward pass. The products are
exact integer matrix products (`torch._int_mm`: oneDNN's int8 kernels, VNNI where the CPU has it), rescaled to
float32. Besides the product a call makes few passes over memory: the rows' largest magnitudes, their quantization
(in place), and the rescale (the int32 product times the rows' scales in one pass, times the weight's in place);
layers that read the same input (q, k, v; gate, up) quantize it once. `ONEDNN_LINEAR` switches the product to
oneDNN's quantized linear (weight prepacked, unsigned activations, the weight's scales applied in its output pass):
faster per product in isolation, but its prepacking made loading 10 s longer and a first product of each new shape
slower, so it is off until measured to win (bench/int8.py's "int8:onednn").
Everything else (embeddings, norms, attention, rotary embeddings, the key/value cache) stays float32, and the
yes/no head (engine/yes_no_head.py) copies its two rows from the unquantized weights and is never quantized
itself: a quantized score head gave all-zero or 0.5 scores in other engines. Measured against float32 in
docs/BENCHMARKS.md ("The approximate CPU mode").
"""

from __future__ import annotations

import threading

import torch

from reranker.core.model_names import INT8

__all__ = ["INT8", "Int8Linear", "quantize_linear_layers"]

_LEVELS = 127.0
_SHIFT = 128
"""oneDNN's quantized linear multiplies unsigned activations: an int8 value v goes in as v + 128, zero point 128."""


def has_onednn_linear() -> bool:
    """Whether this torch has oneDNN's quantized linear (x86 builds)."""
    try:
        packed = torch.ops.onednn.qlinear_prepack(torch.ones(1, 1, dtype=torch.int8), None)
        torch.ops.onednn.qlinear_pointwise.default(torch.full((1, 1), _SHIFT, dtype=torch.uint8), 1.0, _SHIFT, packed,
                                                   torch.ones(1), torch.zeros(1, dtype=torch.int32), None, 1.0, 0,
                                                   torch.float32, "none", [None], "")
    except (AttributeError, RuntimeError, NotImplementedError, TypeError):
        return False
    return True


ONEDNN_LINEAR = False
"""Whether Int8Linear multiplies with oneDNN's quantized linear (set before the model loads; see above)."""


class _LastInput(threading.local):
    """The last input quantized in this thread, kept (with it, so that its id cannot be reused) for the layers that
    read the same tensor next."""

    source: torch.Tensor | None = None
    version: tuple[int, bool] = (-1, False)
    quantized: tuple[torch.Tensor, torch.Tensor] | None = None


_last_input = _LastInput()


def _quantized_rows(x: torch.Tensor, in_features: int, unsigned: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(activations as int8 values, shifted to uint8 where oneDNN multiplies, (rows, in); their scales (rows, 1)),
    reused when the same unchanged tensor comes again (q, k and v read one input; gate and up another)."""
    version = -1 if x.is_inference() else x._version  # inference tensors keep no version; our decoder never
    if x is _last_input.source and (version, unsigned) == _last_input.version:  # writes into an input in place
        return _last_input.quantized  # type: ignore[return-value]
    rows = x.reshape(-1, in_features).float()
    row_scale = rows.abs().amax(dim=1, keepdim=True).clamp_(min=torch.finfo(torch.float32).tiny).div_(_LEVELS)
    scaled = torch.div(rows, row_scale).round_()
    quantized = scaled.add_(_SHIFT).to(torch.uint8) if unsigned else scaled.to(torch.int8)
    _last_input.source, _last_input.version, _last_input.quantized = x, (version, unsigned), (quantized, row_scale)
    return quantized, row_scale


class Int8Linear(torch.nn.Module):
    """A torch.nn.Linear whose product runs in int8: symmetric, per output channel for the weight, per row for the
    input."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        weight = weight.detach().float()
        scale = torch.maximum(weight.amax(dim=1), weight.amin(dim=1).neg_())
        scale = scale.clamp_(min=torch.finfo(torch.float32).tiny).div_(_LEVELS)
        quantized = (weight / scale[:, None]).round_().clamp_(-_LEVELS, _LEVELS).to(torch.int8)
        # (in, out): the layout torch._int_mm multiplies by; oneDNN's own blocked layout where it has one
        self.onednn = ONEDNN_LINEAR
        self.register_buffer("weight_t", torch.ops.onednn.qlinear_prepack(quantized, None) if self.onednn
                             else quantized.t())
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias", None if bias is None else bias.detach().float())
        self.out_features, self.in_features = weight.shape
        self._zero_points = torch.zeros(self.out_features, dtype=torch.int32)

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear) -> Int8Linear:
        return cls(linear.weight, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        quantized, row_scale = _quantized_rows(x, self.in_features, unsigned=self.onednn)
        if self.onednn:
            out = torch.ops.onednn.qlinear_pointwise.default(
                quantized, 1.0, _SHIFT, self.weight_t, self.weight_scale, self._zero_points, None, 1.0, 0,
                torch.float32, "none", [None], "").mul_(row_scale)
        else:
            out = torch.mul(torch._int_mm(quantized, self.weight_t), row_scale).mul_(self.weight_scale)
        if self.bias is not None:
            out = out.add_(self.bias)
        return out.reshape(*x.shape[:-1], self.out_features)


def quantize_linear_layers(module: torch.nn.Module) -> torch.nn.Module:
    """`module` with every torch.nn.Linear inside it replaced, in place, by an Int8Linear (the float32 weights let
    go): for a model already loaded whole (a checkpoint without safetensors files; engine/streaming.py loads the
    others straight into int8)."""
    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, Int8Linear.from_linear(child))
        else:
            quantize_linear_layers(child)
    return module
