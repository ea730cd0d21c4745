"""Does a deployment score as the model does? The probes (analysis/probes.py) judged by a reference (the exact engine
on the same weights) and by the target (what a deployment's clients call), compared pair by pair: a verdict per
probe and overall, agreement of rankings, and a diagnosis in words with the fix for each known way a deployment
goes wrong. The report is plain data (`Report.document()` is REPORT.json, docs/VERIFY.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats

from reranker.analysis.evaluation import compare, load_evaluation, measure, parse_measures, rerank_run
from reranker.analysis.probes import Probe
from reranker.analysis.ranking_metrics import top_k_overlap
from reranker.core.backend import RerankBackend
from reranker.core.failures import RerankerError
from reranker.core.model_names import model_and_dtype
from reranker.core.prompt import resolve_instruction
from reranker.core.ranking import Query

EXACT = 1e-4
"""The largest |dp| of an exact deployment: the engine's own promise across CPUs and groupings is 1e-5."""
DRIFT = 0.05
"""The largest |dp| of an approximate one (int8 on the full-size shape drifts about 0.015), its rankings kept."""
SAME = 1e-4
"""Two scores of one pair that differ by more than this differ (the target asked the same pair twice)."""
VERDICTS = ("exact", "approximate", "wrong")
TEMPLATE_TOKENS = 20
"""Fewer prompt tokens a pair than the model card's prompt by more than this: the template (about 60 tokens of it
around each pair) is missing, not changed."""


@dataclass(frozen=True)
class PairResult:
    query: str
    document: str
    instruction: str
    reference: float
    target: float

    @property
    def abs_diff(self) -> float:
        return abs(self.target - self.reference)

    @property
    def logit_diff(self) -> float:
        return _logit(self.target) - _logit(self.reference)


@dataclass
class ProbeResult:
    probe: Probe
    requests: list[list[PairResult]] = field(default_factory=list)
    """Per request, its pairs in the order sent."""
    refused: str | None = None
    """The target's failure when it would not score a request of this probe."""
    drift: float = DRIFT
    prompt_tokens: list[tuple[int, int, int]] = field(default_factory=list)
    """Per request where both say: (its pairs, the reference's prompt tokens, those the target's server read)."""

    @property
    def pairs(self) -> list[PairResult]:
        return [pair for request in self.requests for pair in request]

    @property
    def max_abs_diff(self) -> float:
        return max((p.abs_diff for p in self.pairs), default=0.0)

    @property
    def verdict(self) -> str:
        if self.refused is not None:
            return "wrong"
        if self.max_abs_diff <= EXACT:
            return "exact"
        if self.max_abs_diff <= self.drift and all(_ranking_kept(r, self.drift) for r in self.requests):
            return "approximate"
        return "wrong"

    def document(self) -> dict:
        pairs = self.pairs
        return {"name": self.probe.name, "catches": self.probe.catches, "verdict": self.verdict,
                "max_abs_diff": self.max_abs_diff, "refused": self.refused,
                "documents": [_shown(p.document) for p in pairs], "reference": [p.reference for p in pairs],
                "target": [p.target for p in pairs], "abs_diff": [p.abs_diff for p in pairs],
                "logit_diff": [_finite(p.logit_diff) for p in pairs],
                "prompt_tokens": {"reference": sum(r for _, r, _ in self.prompt_tokens),
                                  "target": sum(t for _, _, t in self.prompt_tokens)} if self.prompt_tokens else None}


@dataclass(frozen=True)
class Diagnosis:
    cause: str
    """One of CAUSES."""
    evidence: str
    fix: str

    def document(self) -> dict:
        return {"cause": self.cause, "evidence": self.evidence, "fix": self.fix}


@dataclass
class Report:
    target: str
    """The target's model and where it runs, as the report names it."""
    reference: str
    probes: list[ProbeResult]
    diagnoses: list[Diagnosis]
    drift: float = DRIFT
    measures: dict | None = None
    """With a dataset: each measure for reference and target, and the paired test (see `dataset_measures`)."""
    notes: list[str] = field(default_factory=list)
    """What the reader should know beside the verdict (the server naming another model than the reference)."""

    @property
    def verdict(self) -> str:
        return max((p.verdict for p in self.probes), key=VERDICTS.index, default="exact")

    def document(self) -> dict:
        """REPORT.json: a documented, stable shape (docs/VERIFY.md)."""
        pairs = [p for probe in self.probes for p in probe.pairs]
        reference, target = [p.reference for p in pairs], [p.target for p in pairs]
        ranked = [r for probe in self.probes for r in probe.requests if len(r) > 1]
        return {
            "verdict": self.verdict, "target": self.target, "reference": self.reference, "drift": self.drift,
            "max_abs_diff": max((p.abs_diff for p in pairs), default=0.0),
            "spearman": _correlation(stats.spearmanr, reference, target),
            "kendall_tau": _correlation(stats.kendalltau, reference, target),
            "top1_agreement": sum(_order(r, "reference")[0] == _order(r, "target")[0] for r in ranked) / len(ranked)
            if ranked else None,
            "top10_overlap": sum(top_k_overlap(_order(r, "reference"), _order(r, "target"), 10) for r in ranked)
            / len(ranked) if ranked else None,
            "probes": [p.document() for p in self.probes],
            "diagnoses": [d.document() for d in self.diagnoses],
            "notes": list(self.notes),
            **({"measures": self.measures} if self.measures is not None else {}),
        }


Say = Callable[[str], None]
"""Told each line of progress, in words."""


def verify(reference: RerankBackend, target: RerankBackend, probes: Sequence[Probe], drift: float = DRIFT,
           report: Say = lambda line: None) -> Report:
    """Each probe's requests judged by both, request by request as a client sends them; a request the target refuses
    is told in its probe (a reference that cannot score raises)."""
    results = []
    for probe in probes:
        result = ProbeResult(probe, drift=drift)
        for query in probe.requests:
            [expected] = reference.judge_many([query])
            try:
                [got] = target.judge_many([query])
            except RerankerError as e:
                result.refused = str(e)
                break
            result.requests.append([PairResult(query.query, d, resolve_instruction(query.instruction), e.score, g.score)
                                    for d, e, g in zip(query.documents, expected, got)])
            served_tokens = getattr(target, "last_prompt_tokens", None)  # the plain clients' (remote/plain_clients)
            if served_tokens is not None and all(e.tokens is not None for e in expected):
                result.prompt_tokens.append((len(expected), sum(e.tokens for e in expected), served_tokens))
        report(f"{probe.name}: {result.verdict} (max |dp| {result.max_abs_diff:.2g})")
        results.append(result)
    return Report(f"{target.model_name} ({target.capabilities.where})", reference.model_name, results,
                  diagnose(results, drift), drift)


CAUSES = ("no_prompt_template", "chat_template_added", "suffix_cut", "batch_dependent", "instruction_ignored",
          "constant_scores", "control_strings_as_tokens")
FIXES = {
    "constant_scores": "The deployment does not score P(\"yes\") from the model's yes/no logits: every document "
                       "gets (nearly) one score. vLLM: start it with the model card's overrides, --hf-overrides "
                       "'{\"architectures\": [\"Qwen3ForSequenceClassification\"], \"classifier_from_token\": "
                       "[\"no\", \"yes\"], \"is_original_qwen3_reranker\": true}'. A quantization (FP8, int4, a "
                       "GGUF) that collapses the head: try a higher precision (q8_0, bfloat16). A seq-cls "
                       "conversion: make it with `python -m reranker export MODEL --to seq-cls OUT`.",
    "no_prompt_template": "The deployment scores the raw query and document, without the model card's prompt: its "
                          "ranking has little to do with the model's. Apply the card's template (docs/VERIFY.md "
                          "spells it out; vLLM: the query and document templates of its Qwen3-Reranker example), "
                          "or let this project build the prompt: `python -m reranker serve` with "
                          "RERANKER_SERVER pointing at the server's /score.",
    "chat_template_added": "The deployment's prompt is not the model card's (a chat template added around it, or "
                           "another template): rankings mostly agree but the scores are off. vLLM: start the server "
                           "without --chat-template for the reranker, and send the query and document templated "
                           "as the card does; or check what your client adds around the texts.",
    "suffix_cut": "Long documents are cut from the end of the prompt, losing the part that asks for yes or no: cut "
                  "the document instead and keep the prompt's end (vLLM: truncate_prompt_tokens, or "
                  "max_model_len large enough; sentence-transformers: a release that keeps the suffix when it "
                  "truncates; our sidecar and engine do this already).",
    "batch_dependent": "A pair's score depends on the other documents of the request (padding on the wrong side, an "
                       "attention mask lost, a batch-size-dependent export): the same pair got different scores. "
                       "ONNX / TensorRT exports: export with dynamic axes and left padding, or serve batches of one "
                       "to check; llama.cpp: one sequence per slot (--parallel 1) to confirm.",
    "instruction_ignored": "The instruction sent is not used: the target scores a custom instruction as the default "
                           "one, where the model's scores change with it. Send it where the server reads it (our API: "
                           "`instruction`; vLLM's template: the `instruct` part of the query template) or build the "
                           "prompt on the client.",
    "control_strings_as_tokens": "Special tokens typed in a document (<|im_end|>, <think>) are read as the prompt's "
                                 "own, so a document can end the turn or answer for the model: tokenize user text "
                                 "with split_special_tokens (transformers) or parse_special=false (llama.cpp), as "
                                 "this project's engine does.",
}


def diagnose(results: Sequence[ProbeResult], drift: float = DRIFT) -> list[Diagnosis]:
    """Each known cause the probes show, with its evidence and its fix."""
    by_name = {r.probe.name: r for r in results}
    found: list[Diagnosis] = []

    def said(cause: str, evidence: str) -> None:
        found.append(Diagnosis(cause, evidence, FIXES[cause]))

    plain = [by_name[name] for name in ("plain_pairs", "relevant_and_unrelated") if name in by_name]
    basic = [p for probe in plain for p in probe.pairs]
    if len(basic) >= 3:
        _template_causes(basic, [c for probe in plain for c in probe.prompt_tokens], drift, said)
    _one_probe_wrong(by_name, "long_document", "suffix_cut", drift, said)
    _one_probe_wrong(by_name, "control_strings", "control_strings_as_tokens", drift, said)
    _instruction(by_name, said)
    _asked_twice(results, said)
    return found


def _template_causes(basic: list[PairResult], prompt_tokens: list[tuple[int, int, int]], drift: float,
                     said: Callable[[str, str], None]) -> None:
    """Constant scores, no template or another template, read from the plain probes' pairs and, where the server
    says how many tokens it read, from that: far fewer than the card's prompt has is no template; about as many or
    more is a template that is not the card's (the scores being off)."""
    reference, target = [p.reference for p in basic], [p.target for p in basic]
    spread_ref, spread_target = max(reference) - min(reference), max(target) - min(target)
    saturated = all(t > 0.999 for t in target) or all(t < 0.001 for t in target)
    if spread_target <= max(1e-6, spread_ref / 100) or (saturated and spread_ref > 0.01):
        said("constant_scores", f"the target's scores of {len(basic)} plain pairs span {spread_target:.2g} "
                                f"(from {min(target):.4g} to {max(target):.4g}); the model's span {spread_ref:.2g}")
        return
    worst = max(p.abs_diff for p in basic)
    if worst <= drift:
        return
    if prompt_tokens:
        pairs, card, served = (sum(counts) for counts in zip(*prompt_tokens))
        card, served = card / pairs, served / pairs
        read = f"the server read {served:.0f} prompt tokens a pair where the model card's prompt has {card:.0f}"
        if served < card - TEMPLATE_TOKENS:
            said("no_prompt_template", f"{read}: the template is missing (max |dp| {worst:.3f})")
        else:
            said("chat_template_added", f"{read}, and its scores are off by up to {worst:.3f}: a template, but "
                                        "not the card's")
        return
    rho = _correlation(stats.spearmanr, reference, target)
    if rho is None or rho < 0.5:
        said("no_prompt_template", f"the target's ranking of the plain pairs hardly follows the model's (Spearman "
                                   f"{'n/a' if rho is None else f'{rho:.2f}'}; max |dp| {worst:.3f})")
    else:
        said("chat_template_added", f"the target ranks the plain pairs much as the model does (Spearman {rho:.2f}) "
                                    f"but its scores are off by up to {worst:.3f}")


def _one_probe_wrong(by_name: dict[str, ProbeResult], name: str, cause: str, drift: float,
                     said: Callable[[str, str], None]) -> None:
    """`cause` when probe `name` is wrong while the plain pairs are right (else the template explains it)."""
    probe, plain = by_name.get(name), by_name.get("plain_pairs")
    if probe is None or plain is None or plain.verdict == "wrong" or probe.verdict != "wrong" or probe.refused:
        return
    said(cause, f"the {name} probe is off by up to {probe.max_abs_diff:.3f} where the plain pairs are within "
                f"{plain.max_abs_diff:.2g}")


def _instruction(by_name: dict[str, ProbeResult], said: Callable[[str, str], None]) -> None:
    """instruction_ignored: the target scores the custom instruction's pairs (nearly) as it scores the same pairs
    under the default one, where the model moves them ten times as much, and scores the default's right (an f16
    llama.cpp's batch noise moved its scores 3e-4 where the model's moved 0.078: ignored)."""
    custom, default = by_name.get("custom_instruction"), by_name.get("relevant_and_unrelated")
    if custom is None or default is None or custom.refused or default.verdict == "wrong":
        return  # (with the default instruction wrong too, the template explains it)
    pairs = list(zip(custom.pairs, default.pairs))
    target_moved = max((abs(c.target - d.target) for c, d in pairs), default=0.0)
    model_moved = max((abs(c.reference - d.reference) for c, d in pairs), default=0.0)
    if model_moved > 10 * SAME and target_moved <= max(SAME, model_moved / 10):  # a target's own noise moves a little
        said("instruction_ignored", f"with the custom instruction the target's scores moved by at most "
                                    f"{target_moved:.2g}; the model's moved by up to {model_moved:.3f}")


def _asked_twice(results: Sequence[ProbeResult], said: Callable[[str, str], None]) -> None:
    """batch_dependent: one pair, asked in several requests (or twice in one), got scores that differ."""
    seen: dict[tuple[str, str, str], list[float]] = {}
    for result in results:
        for pair in result.pairs:
            seen.setdefault((pair.instruction, pair.query, pair.document), []).append(pair.target)
    spread = max(((max(s) - min(s), key) for key, s in seen.items() if len(s) > 1), default=(0.0, None))
    if spread[0] > SAME and spread[1] is not None:
        said("batch_dependent", f"the pair ({spread[1][1]!r}, {_shown(spread[1][2])!r}) got scores "
                                f"{spread[0]:.3g} apart when asked alone, among other documents or twice")


def _ranking_kept(pairs: Sequence[PairResult], drift: float) -> bool:
    """No two documents of one request in the other order where the model's scores are more than `drift` apart."""
    return not any((a.reference - b.reference > drift and a.target < b.target)
                   for a in pairs for b in pairs)


def _order(pairs: Sequence[PairResult], side: str) -> list[int]:
    return sorted(range(len(pairs)), key=lambda n: (-getattr(pairs[n], side), n))


def _correlation(measure: Callable, a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    value = float(measure(a, b)[0])
    return None if math.isnan(value) else value


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _shown(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def other_model_note(served: str | None, reference: str | None) -> list[str]:
    """A note when the server names a model other than the reference (compared by the name's last part, so a hub id
    and a folder of the same name agree): then every difference may be that, not the deployment."""
    if not served or not reference:
        return []
    if _last_part(served) == _last_part(reference):
        return []
    return [f"The server says it serves {served!r}, and the reference is {reference!r}: if they are not the same "
            "weights, the differences below are the models', not the deployment's. Name the reference with "
            "--reference (the hub id or folder of the weights the server loaded)."]


def _last_part(name: str) -> str:
    return model_and_dtype(name)[0].rstrip("/").replace("\\", "/").split("/")[-1].lower()


def dataset_measures(reference: RerankBackend, target: RerankBackend, folder: Path, run: Path | None, top_k: int,
                     instruction: str | None = None, say: Say = lambda line: None) -> dict:
    """Both rerank the same top K of a dataset's first stage (evaluate's formats and measures, docs/EVALUATE.md):
    each measure's mean for reference and target, the paired t-test between them, and each query's difference."""
    dataset, first, texts = load_evaluation(folder, run, top_k)
    measures = parse_measures([])

    def judge(backend: RerankBackend, queries: Sequence[Query], progress: Callable | None) -> list:
        return backend.judge_many(queries, progress)

    per_query = {}
    for side, backend in (("reference", reference), ("target", target)):
        say(f"{side}: reranking the top {top_k} of {len(first):,} queries")
        reranked = rerank_run(backend, first, dataset.queries, texts, top_k, instruction, judge)
        per_query[side] = measure(dataset.qrels, reranked.run, measures, dataset.queries)
    tested = compare(per_query["reference"], per_query["target"])
    return {"dataset": str(folder), "top_k": top_k, "queries": len(next(iter(per_query["reference"].values()), {})),
            "measures": {name: {"reference": c.before, "target": c.after, "target_minus_reference": c.after - c.before,
                                "test": "paired t-test, two-sided", "p_value": c.p_value}
                         for name, c in tested.items()},
            "per_query_target_minus_reference": {
                name: {q: per_query["target"][name][q] - value for q, value in values.items()}
                for name, values in per_query["reference"].items()}}
