"""`python -m reranker verify TARGET`: does the reranker you serve give the model's scores? The probes
(analysis/probes.py) sent to TARGET as its clients send them, and to the exact engine on the same weights in this
process; a verdict per probe and overall, the diagnosis with its fix, REPORT.json (docs/VERIFY.md). The exit status
is 1 when the target is wrong, so a team can run it in CI after each deployment; 2 when it could not be checked.

TARGET: an address (`.../v1/rerank`, `/v2/rerank`, `/rerank`, `/score`, or a base address whose rerank addresses are
each checked; with --backend, what this project's own backend for that server gets), a model in another dtype
("Qwen/Qwen3-Reranker-0.6B (int8)"), or a folder (a converted checkpoint), run in this process.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from reranker.analysis.probes import probe_suite
from reranker.analysis.verification import DRIFT, VERDICTS, Report, dataset_measures, other_model_note, verify
from reranker.backends import open_reference, open_targets
from reranker.core.failures import RerankerError


@dataclass
class VerifyOptions:
    target: str
    reference: str | None = None
    key: str | None = None
    through_backend: bool = False
    """Check what this project's remote backend gets from the server (it builds the card's prompt itself)."""
    prompt_halves: bool = False
    """Send the model card's prompt in two halves, as a sequence-classifier export's clients must (TEI, Infinity)."""
    drift: float = DRIFT
    max_length: int = 8192
    """The reference's limit of prompt tokens: the server's (vLLM's max_model_len), when it is smaller."""
    dataset: Path | None = None
    run: Path | None = None
    top_k: int = 10
    instruction: str | None = None
    timeout: float = 300.0


def run_verify(options: VerifyOptions, say=lambda line: None) -> list[Report]:
    """One report per address checked (a base address may offer several)."""
    targets, served = open_targets(options.target, options.key, options.through_backend, options.max_length,
                                   options.timeout, options.prompt_halves)
    reference = open_reference(options.reference or served, options.target, options.max_length)
    say(f"reference: {reference.model_name} in this process (float32)")
    reports = []
    for target in targets:
        say(f"target: {target.model_name} at {target.capabilities.where}")
        report = verify(reference, target, probe_suite(), options.drift, lambda line: say(f"  {line}"))
        report.notes += other_model_note(served, options.reference)
        if options.dataset is not None:
            report.measures = dataset_measures(reference, target, options.dataset, options.run, options.top_k,
                                               options.instruction, say)
        reports.append(report)
    return reports


def summary(report: Report) -> str:
    document = report.document()
    lines = [f"{document['target']}: {document['verdict'].upper()} against {document['reference']}",
             f"  max |dp| {document['max_abs_diff']:.3g}, Spearman {_shown(document['spearman'])}, Kendall tau "
             f"{_shown(document['kendall_tau'])}, top-1 agreement {_shown(document['top1_agreement'])}"]
    for probe in document["probes"]:
        lines.append(f"  {probe['verdict']:<12} {probe['name']:<26} max |dp| {probe['max_abs_diff']:.3g}"
                     + (f"  (refused: {probe['refused']})" if probe["refused"] else ""))
    for diagnosis in document["diagnoses"]:
        lines.append(f"  diagnosis: {diagnosis['cause']}: {diagnosis['evidence']}\n    fix: {diagnosis['fix']}")
    lines += [f"  note: {note}" for note in document["notes"]]
    measures = document.get("measures")
    if measures:
        for name, m in measures["measures"].items():
            lines.append(f"  {name}: reference {m['reference']:.4f}, target {m['target']:.4f} "
                         f"({m['target_minus_reference']:+.4f}, p = {_shown(m['p_value'])})")
    return "\n".join(lines)


def main(args) -> int:
    """The `verify` command (cli/__init__ parses its arguments)."""
    options = VerifyOptions(target=args.target, reference=args.reference, key=args.key,
                            through_backend=args.backend, prompt_halves=args.prompt_halves, drift=args.drift,
                            max_length=args.max_length,
                            dataset=Path(args.dataset) if args.dataset else None,
                            run=Path(args.run) if args.run else None, top_k=args.top_k, instruction=args.instruction)
    if args.json and not Path(args.json).resolve().parent.is_dir():
        print(f"error: the folder of {args.json} does not exist; nothing was checked", file=sys.stderr)
        return 2
    try:
        reports = run_verify(options, lambda line: print(line, file=sys.stderr, flush=True))
    except (RerankerError, ValueError) as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 2
    documents = [r.document() for r in reports]
    verdict = max((d["verdict"] for d in documents), key=VERDICTS.index)
    if args.json:
        body = documents[0] if len(documents) == 1 else {"verdict": verdict, "targets": documents}
        Path(args.json).write_text(json.dumps(body, ensure_ascii=False, indent=1, allow_nan=False), encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    print("\n\n".join(summary(r) for r in reports))
    return 1 if verdict == "wrong" else 0


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
