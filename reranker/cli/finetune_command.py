"""`python -m reranker finetune DATASET --model BASE --output DIR`: LoRA on the labelled pairs of an Evaluate dataset,
proved on held-out queries (docs/TUNE.md).

Queries with a relevant label are split, seeded, into training and held-out queries; the held-out ones are never
trained on. A training query gives its relevant documents and, as negatives, the first stage's top documents that are
not relevant (hard negatives: what the reranker must push down). At the end the base and the tuned model rerank the
held-out queries with the evaluate command's own code, and the paired test says whether the tuned one is better.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reranker.analysis.evaluation import compare, evaluated_queries, load_evaluation, means
from reranker.cli.calibrate_command import graded_qrels
from reranker.cli.evaluate_command import EvaluateOptions, evaluate
from reranker.core.failures import BadRequest
from reranker.core.languages import instruction_language_note
from reranker.core.model_names import resolve_model
from reranker.core.prompt import resolve_instruction
from reranker.formats.retrieval import Dataset, DatasetError, Qrels, Run, read_documents, write_run

MIN_HELD_OUT = 3
"""Held-out queries at least: a paired test over fewer says nothing."""
MIN_TRAINING = 3


@dataclass
class FinetuneOptions:
    dataset: Path
    output: Path
    base: str | None = None
    run: Path | None = None
    hold_out: float = 0.2
    epochs: int = 3
    lora_rank: int = 8
    negatives_per_positive: int = 8
    instruction: str | None = None
    top_k: int = 100
    """The first stage's documents read per query: where hard negatives come from, and what is reranked."""
    learning_rate: float = 2e-4
    batch_size: int = 8
    seed: int = 0
    device: str | None = None
    queries: Path | None = None
    qrels: Path | None = None


def split_queries(labelled: Sequence[str], hold_out: float, seed: int) -> tuple[list[str], list[str]]:
    """(training, held-out) query ids, the held-out share drawn with `seed`; DatasetError when too few."""
    if not 0 < hold_out < 1:
        raise BadRequest(f"--hold-out {hold_out} must be a share between 0 and 1 (0.2: a fifth of the queries)")
    shuffled = sorted(labelled)
    random.Random(seed).shuffle(shuffled)
    held = round(len(shuffled) * hold_out)
    if held < MIN_HELD_OUT or len(shuffled) - held < MIN_TRAINING:
        needed = max(MIN_TRAINING + MIN_HELD_OUT, round(MIN_HELD_OUT / hold_out + 0.5))
        raise DatasetError(f"{len(labelled)} labelled quer{'y' if len(labelled) == 1 else 'ies'} (with a relevant "
                           f"document); holding out {hold_out:.0%} leaves {held} to test on and {len(labelled) - held} "
                           f"to train on. Label at least {needed} queries (a few hundred pairs or more), or change "
                           "--hold-out")
    return shuffled[held:], shuffled[:held]


def training_pairs(qids: Sequence[str], dataset: Dataset, first: Run, texts: dict[str, str], top_k: int,
                   negatives_per_positive: int, instruction: str | None) -> list:
    """Each query's relevant documents and its first stage's top non-relevant ones (at most
    negatives_per_positive per relevant one)."""
    from reranker.engine.finetuning import TrainingPair

    pairs = []
    for qid in qids:
        labels = dataset.qrels.get(qid, {})
        positives = [d for d, grade in labels.items() if grade > 0]
        negatives = [d for d, _ in first.get(qid, [])[:top_k] if labels.get(d, 0) <= 0]
        negatives = negatives[:negatives_per_positive * len(positives)]
        pairs += [TrainingPair(dataset.queries[qid], texts[d], True, instruction) for d in positives if d in texts]
        pairs += [TrainingPair(dataset.queries[qid], texts[d], False, instruction) for d in negatives if d in texts]
    return pairs


def positive_weight(pairs: Sequence, say: Callable[[str], None]) -> float:
    """The collapse guard: no negatives is refused; fewer negatives than positives are weighed up to balance them
    (a model that answers "yes" to everything must not win the loss)."""
    positives = sum(p.relevant for p in pairs)
    negatives = len(pairs) - positives
    if negatives == 0:
        raise DatasetError(f"the training queries give {positives:,} relevant pairs and no non-relevant one: tuned "
                           "on these the model would learn to answer yes to everything. Add documents labelled 0, or "
                           "a first-stage run (--run) whose top documents include non-relevant ones")
    if positives == 0:
        raise DatasetError("the training queries give no relevant pair: label some documents 1 or 2")
    if negatives >= positives:
        return 1.0
    say(f"only {negatives:,} non-relevant pairs for {positives:,} relevant ones: each relevant pair weighs "
        f"{negatives / positives:.2f} in the loss, so both classes weigh the same (the guard against a model that "
        "answers yes to everything)")
    return negatives / positives


def held_out_files(folder: Path, qids: Sequence[str], dataset: Dataset, first: Run,
                   run_given: bool) -> tuple[Path, Path | None]:
    """The held-out queries as TSV topics (and the run cut to them), for the evaluate command's code."""
    topics = folder / "held_out_queries.tsv"
    topics.write_text("".join(f"{q}\t{' '.join(dataset.queries[q].split())}\n" for q in qids), encoding="utf-8")
    if not run_given:
        return topics, None
    run = folder / "held_out_run.trec"
    write_run(run, {q: first[q] for q in qids if q in first}, "first-stage")
    return topics, run


def held_out_evaluation(options: FinetuneOptions, held: Sequence[str], dataset: Dataset, first: Run) -> dict:
    """evaluation.json: the base and the tuned model reranking the held-out queries, measured and tested."""
    with tempfile.TemporaryDirectory() as scratch:
        topics, run = held_out_files(Path(scratch), held, dataset, first, options.run is not None)
        measured = {}
        for name, model in (("base", resolve_model(options.base)), ("tuned", str(options.output))):
            ask = EvaluateOptions(dataset=options.dataset, run=run, top_k=options.top_k,
                                  instructions=[options.instruction], backend=model, queries=topics,
                                  qrels=options.qrels, store=Path(scratch) / "judgements.sqlite3", dtype="float32")
            measured[name] = evaluate(ask).reranked[0].per_query
    tested = compare(measured["base"], measured["tuned"])
    return {"held_out": list(held), "base_model": resolve_model(options.base), "tuned_model": str(options.output),
            "instruction": resolve_instruction(options.instruction), "top_k": options.top_k,
            "base": means(measured["base"]), "tuned": means(measured["tuned"]),
            "significance": {name: {"test": "paired t-test, two-sided", "p_value": c.p_value,
                                    "tuned_minus_base": c.after - c.before, "significant_at_0.05": c.significant}
                             for name, c in tested.items()},
            "per_query": measured}


def prepare(options: FinetuneOptions, say: Callable[[str], None]) -> tuple[Dataset, Run, list, list, list[str], float]:
    """The dataset read and checked, the queries split and the pairs built: what training needs."""
    qrels: Qrels = graded_qrels(options.dataset, options.qrels)
    dataset, first, texts = load_evaluation(options.dataset, options.run, options.top_k, options.queries,
                                            options.qrels)
    labelled = [q for q in evaluated_queries(dataset.queries, qrels) if any(g > 0 for g in qrels[q].values())]
    train, held = split_queries(labelled, options.hold_out, options.seed)
    note = instruction_language_note(options.instruction, [dataset.queries[q] for q in labelled])
    if note:
        say(f"note: {note}")
    wanted = {d for q in labelled for d, g in qrels[q].items() if g > 0} - set(texts)
    if wanted:
        texts = {**texts, **read_documents(dataset.corpus, wanted)}
    train_pairs = training_pairs(train, dataset, first, texts, options.top_k, options.negatives_per_positive,
                                 options.instruction)
    held_pairs = training_pairs(held, dataset, first, texts, options.top_k, options.negatives_per_positive,
                                options.instruction)
    weight = positive_weight(train_pairs, say)
    positives = sum(p.relevant for p in train_pairs)
    say(f"{len(labelled)} labelled queries: {len(train)} to train on ({positives:,} relevant and "
        f"{len(train_pairs) - positives:,} non-relevant pairs), {len(held)} held out")
    return dataset, first, train_pairs, held_pairs, held, weight


def run_finetune(options: FinetuneOptions, say: Callable[[str], None]) -> dict:
    """Train, save DIR, evaluate on the held-out queries; evaluation.json's document."""
    from reranker.engine.finetuning import TuneOptions, TuneProgress, finetune

    dataset, first, train_pairs, held_pairs, held, weight = prepare(options, say)

    def progress(p: TuneProgress) -> None:
        print(f"\repoch {p.epoch}/{p.epochs}, step {p.step:,}/{p.steps:,}, loss {p.train_loss:.4f}, about "
              f"{p.seconds_left:,.0f} s left ", end="" if p.step < p.steps else "\n", file=sys.stderr, flush=True)

    tuned = finetune(resolve_model(options.base), train_pairs, held_pairs, options.output,
                     TuneOptions(epochs=options.epochs, lora_rank=options.lora_rank,
                                 learning_rate=options.learning_rate, batch_size=options.batch_size,
                                 device=options.device, seed=options.seed, positive_weight=weight), progress)
    losses = ", ".join(f"{x:.4f}" for x in tuned.held_out_losses)
    say(f"held-out loss before and after each epoch: {losses}"
        + (" (it rose: stopped, the best epoch's adapters kept)" if tuned.stopped_early else ""))
    say("evaluating the base and the tuned model on the held-out queries")
    document = held_out_evaluation(options, held, dataset, first)
    document["training"] = {"train_pairs": len(train_pairs), "relevant_pairs": sum(p.relevant for p in train_pairs),
                            "held_out_pairs": len(held_pairs), "epochs_run": tuned.epochs_run,
                            "stopped_early": tuned.stopped_early, "held_out_losses": tuned.held_out_losses,
                            "train_losses": tuned.train_losses, "positive_weight": weight,
                            "lora_rank": options.lora_rank, "learning_rate": options.learning_rate,
                            "seconds": tuned.seconds}
    (options.output / "evaluation.json").write_text(json.dumps(document, indent=1, allow_nan=False),
                                                   encoding="utf-8")
    (options.output / "README.md").write_text(model_card(options, document), encoding="utf-8")
    return document


def model_card(options: FinetuneOptions, document: dict) -> str:
    training = document["training"]
    rows = "\n".join(f"| {name} | {document['base'][name]:.4f} | {document['tuned'][name]:.4f} | "
                     f"{test['p_value'] if test['p_value'] is None else format(test['p_value'], '.3g')} |"
                     for name, test in document["significance"].items())
    return f"""# {options.output.name}: {document['base_model']} tuned with LoRA

Made by `python -m reranker finetune` (docs/TUNE.md). Open it as any Qwen3-Reranker folder: `--model {options.output}`,
`RERANKER_MODEL={options.output}`, `Qwen3Reranker(model="{options.output}")`. The adapters alone are in `adapter/`
(peft), for `PeftModel.from_pretrained(base, "adapter")`; the weights here have them merged (float32).

- base: `{document['base_model']}`
- dataset: `{options.dataset}`{f", first stage `{options.run}`" if options.run else ", first stage BM25"}
- instruction: {document['instruction']}
- trained on {training['train_pairs']:,} pairs ({training['relevant_pairs']:,} relevant; hard negatives: the first
  stage's top {options.top_k} non-relevant documents, at most {options.negatives_per_positive} per relevant one),
  binary cross-entropy on the served logit; LoRA rank {options.lora_rank}, learning rate {options.learning_rate},
  {training['epochs_run']} epoch(s){' (stopped early: the held-out loss rose)' if training['stopped_early'] else ''}
- held out: {len(document['held_out'])} queries, never trained on (evaluation.json lists them)

## Held-out queries, reranking the first stage's top {options.top_k}

| measure | base | tuned | p (paired t) |
|---|---|---|---|
{rows}
"""


def main(args) -> int:
    """The `finetune` command (cli/tune_arguments parses its arguments)."""
    from reranker.core.failures import RerankerError

    options = FinetuneOptions(dataset=Path(args.dataset), output=Path(args.output), base=args.model,
                              run=Path(args.run) if args.run else None, hold_out=args.hold_out, epochs=args.epochs,
                              lora_rank=args.lora_rank, negatives_per_positive=args.negatives_per_positive,
                              instruction=args.instruction, top_k=args.top_k, learning_rate=args.learning_rate,
                              batch_size=args.batch_size, seed=args.seed, device=args.device,
                              queries=Path(args.queries) if args.queries else None,
                              qrels=Path(args.qrels) if args.qrels else None)
    problem = _argument_problem(options)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        document = run_finetune(options, say)
    except (BadRequest, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RerankerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {options.output} (the merged model, adapter/, README.md, evaluation.json)", file=sys.stderr)
    print(f"held out: {len(document['held_out'])} queries")
    print(f"{'measure':<10} {'base':>8} {'tuned':>8} {'change':>8}  p (paired t)")
    for name, test in document["significance"].items():
        p = test["p_value"]
        print(f"{name:<10} {document['base'][name]:8.4f} {document['tuned'][name]:8.4f} "
              f"{test['tuned_minus_base']:+8.4f}  {'n/a' if p is None else f'{p:.3g}'}")
    return 0


def _argument_problem(options: FinetuneOptions) -> str | None:
    if options.output.exists() and any(options.output.iterdir()):
        return f"{options.output} is not empty; name a new folder for the tuned model"
    if not options.output.resolve().parent.is_dir():
        return f"the folder of {options.output} does not exist"
    for name in ("epochs", "lora_rank", "negatives_per_positive", "top_k", "batch_size"):
        if getattr(options, name) < 1:
            return f"--{name.replace('_', '-')} must be at least 1"
    if options.learning_rate <= 0:
        return "--learning-rate must be above 0"
    return None
