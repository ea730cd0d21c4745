"""A calibration applied: the monotone map from the model's log-odds to P(relevant) that `python -m reranker calibrate`
fits (analysis/calibration.py, docs/TUNE.md), read back from its CAL.json, and the backend that scores through it.

Plain numbers, no pickle and no numpy: a calibration is a Platt line (`sigmoid(slope * logit + intercept)`) or an
isotonic step function (its knots, linearly joined and held flat beyond them, as scikit-learn predicts). Applying it
changes each judgement's `score` only; the `logit` stays the model's own, and ranking reads the logit, so a
calibration never reorders anything (isotonic maps are flat in places: ranking by them would make ties).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from reranker.core.backend import Capabilities, RerankBackend, ScoringStopped
from reranker.core.failures import BadRequest
from reranker.core.model_names import calibrated_name
from reranker.core.ranking import Judgement, Progress, Query

METHODS = ("platt", "isotonic")


class CalibrationError(BadRequest, ValueError):
    """A CAL.json that cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class Calibration:
    """A fitted map from log-odds to P(relevant): `platt` (`slope`, `intercept`) or `isotonic` (`logits`, ascending,
    and their `probabilities`, non-decreasing)."""

    method: str
    parameters: Mapping[str, float | list[float]]

    def probability(self, logit: float) -> float:
        if self.method == "platt":
            z = float(self.parameters["slope"]) * logit + float(self.parameters["intercept"])
            return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
        xs, ys = self.parameters["logits"], self.parameters["probabilities"]
        assert isinstance(xs, list) and isinstance(ys, list)
        if logit <= xs[0]:
            return ys[0]
        if logit >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, logit)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (logit - x0) / (x1 - x0)

    @property
    def fingerprint(self) -> str:
        """Eight hex digits of the map itself: what the scored name carries."""
        text = json.dumps({"method": self.method, "map": self.parameters}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]

    def document(self) -> dict:
        return {"method": self.method, "map": dict(self.parameters)}


def calibration_from(document: Mapping, source: str = "the calibration") -> Calibration:
    """A Calibration from CAL.json's `method` and `map`; CalibrationError saying what is wrong."""
    method, fitted = document.get("method"), document.get("map")
    if method not in METHODS or not isinstance(fitted, Mapping):
        raise CalibrationError(f"{source}: not a calibration (it needs `method`: platt or isotonic, and `map`); make "
                               "one with `python -m reranker calibrate DATASET --output CAL.json`")
    if method == "platt":
        numbers = [fitted.get("slope"), fitted.get("intercept")]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in numbers):
            raise CalibrationError(f"{source}: a platt map needs finite numbers `slope` and `intercept`")
        return Calibration(method, {"slope": float(numbers[0]), "intercept": float(numbers[1])})
    xs, ys = fitted.get("logits"), fitted.get("probabilities")
    if not (_numbers(xs) and _numbers(ys) and len(xs) == len(ys) and xs):
        raise CalibrationError(f"{source}: an isotonic map needs `logits` and `probabilities`, two equally long lists "
                               "of numbers")
    if any(b < a for a, b in zip(xs, xs[1:])) or any(b < a for a, b in zip(ys, ys[1:])) \
            or not all(0.0 <= y <= 1.0 for y in ys):
        raise CalibrationError(f"{source}: an isotonic map's logits must ascend and its probabilities rise within "
                               "0-1")
    return Calibration(method, {"logits": [float(x) for x in xs], "probabilities": [float(y) for y in ys]})


def load_calibration(path: Path | str) -> Calibration:
    """CAL.json as `calibrate` writes it; CalibrationError when it cannot be read or used."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CalibrationError(f"cannot read the calibration {path}: {e}") from None
    if not isinstance(document, Mapping):
        raise CalibrationError(f"{path}: not a calibration (a JSON object with `method` and `map`)")
    return calibration_from(document, str(path))


def _numbers(values: object) -> bool:
    return isinstance(values, list) and all(isinstance(v, int | float) and math.isfinite(v) for v in values)


class CalibratedBackend(RerankBackend):
    """Another backend's judgements with each score read through a calibration: P(relevant) on the labels it was
    fitted to. The logit (and so every ranking) is the model's own. Named `calibrated_name(...)`, so its scores are
    cached, shown and exported apart from the raw ones."""

    def __init__(self, inner: RerankBackend, calibration: Calibration, source: str | None = None) -> None:
        self.inner = inner
        self.calibration = calibration
        self.source = source
        self.model_name = calibrated_name(inner.model_name, calibration.fingerprint)

    @property
    def capabilities(self) -> Capabilities:
        # a server's own jobs and extra models would answer uncalibrated scores
        return replace(self.inner.capabilities, jobs=False, extra_models=False)

    def describe(self) -> dict[str, object]:
        return {**self.inner.describe(), "model": self.model_name,
                "calibration": self.source or self.calibration.method}

    def judge_many(self, queries: Sequence[Query], progress: Progress | None = None) -> list[list[Judgement]]:
        try:
            verdicts = self.inner.judge_many(queries, progress)
        except ScoringStopped as stopped:
            raise ScoringStopped([[None if j is None else self._mapped(j) for j in row]
                                  for row in stopped.partial]) from None
        return [[self._mapped(j) for j in row] for row in verdicts]

    def _mapped(self, judgement: Judgement) -> Judgement:
        passages = judgement.passages
        if passages is not None:
            passages = tuple(replace(p, score=self.calibration.probability(p.logit)) for p in passages)
        return replace(judgement, score=self.calibration.probability(judgement.logit), passages=passages)


def calibrated(backend: RerankBackend, path: Path | str | None) -> RerankBackend:
    """`backend` scoring through the calibration at `path`; `backend` itself when there is none."""
    if not path:
        return backend
    return CalibratedBackend(backend, load_calibration(path), str(path))
