"""The models we know by name, and which one is meant when none is named; free of torch, so a process that only
talks to a server (the workbench under ./start.sh) never imports it."""

from __future__ import annotations

from reranker.core.environment import DTYPE, MODEL

DEFAULT_MODEL = MODEL.default
KNOWN_MODELS = ("Qwen/Qwen3-Reranker-0.6B", "Qwen/Qwen3-Reranker-4B", "Qwen/Qwen3-Reranker-8B")


def resolve_model(model: str | None) -> str:
    return model or MODEL.read()

INT8 = "int8"
"""The approximate CPU mode's dtype (engine/int8.py)."""
FAST = "fast"
"""The approximate mode measured fastest on this CPU, bfloat16 or int8 (engine/loading.fast_dtype); a model runs
named by the one it resolved to, never "(fast)"."""
DTYPE_NAMES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
               "float16": "float16", "fp16": "float16", "int8": "int8", "qint8": "int8", "fast": "fast"}
"""What a dtype may be called (RERANKER_DTYPE, --dtype), by the name it is shown with."""


def scored_name(model: str, dtype: str | None) -> str:
    """The name a model's scores carry: with its dtype unless that is float32 (exact) or not said, so that an
    approximate mode's scores are never shown, exported or cached as float32's."""
    dtype = DTYPE_NAMES.get((dtype or "").strip().lower())
    return model if dtype in (None, "float32") else f"{model} ({dtype})"


def model_and_dtype(name: str) -> tuple[str, str | None]:
    """A scored name taken apart: "Qwen/Qwen3-Reranker-0.6B (int8)" gives (the model, "int8"); a plain name gives
    (it, None). So the name shown beside scores also opens that model in that dtype. A calibration's mark
    ("… (int8, calibrated 1a2b3c4d)", `calibrated_name`) is read past: the model and dtype under it."""
    stem, _, last = name.rstrip().rpartition(" (")
    marks = last[:-1].split(", ") if stem and last.endswith(")") else []
    if marks and marks[-1].startswith(CALIBRATED + " "):
        marks.pop()
        if not marks:
            return stem, None
    dtype = marks[0] if len(marks) == 1 else None
    return (stem, dtype) if dtype in DTYPE_NAMES.values() else (name, None)


CALIBRATED = "calibrated"


def calibrated_name(name: str, fingerprint: str) -> str:
    """A scored name with a calibration's mark: "M" -> "M (calibrated FP)", "M (int8)" -> "M (int8, calibrated FP)";
    the fingerprint tells two calibrations' scores apart (in caches and exports)."""
    model, dtype = model_and_dtype(name)
    if dtype is not None:
        return f"{model} ({dtype}, {CALIBRATED} {fingerprint})"
    return f"{name} ({CALIBRATED} {fingerprint})"


def default_dtype() -> str | None:
    """$RERANKER_DTYPE by its shown name (None when unset or auto)."""
    return DTYPE_NAMES.get(DTYPE.read().strip().lower())
