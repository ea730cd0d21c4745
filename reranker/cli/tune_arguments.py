"""The arguments of `python -m reranker calibrate` and `finetune` (docs/TUNE.md), beside the other commands'."""

from __future__ import annotations

import argparse


def add_tune_commands(commands: argparse._SubParsersAction) -> None:
    calibrate = commands.add_parser(
        "calibrate", help="fit a map from the model's log-odds to P(relevant) on a labelled dataset",
        description="DATASET is an Evaluate dataset (a BEIR folder). Each query's top K of the first stage (--run, "
                    "else BM25) are judged as `evaluate` judges them (the same judgement store), and a monotone map "
                    "from log-odds to P(relevant) is fitted: platt (logistic) or isotonic; ECE and Brier before and "
                    "after, cross-validated by query. Use it with --calibration CAL.json on rank, batch and "
                    "evaluate, or RERANKER_CALIBRATION for the API; rankings never change.")
    calibrate.add_argument("dataset", metavar="DATASET")
    calibrate.add_argument("--method", choices=("platt", "isotonic"), default="platt")
    calibrate.add_argument("--output", required=True, metavar="CAL.json")
    calibrate.add_argument("--model", default=None, help="hub id or local folder (default: $RERANKER_MODEL)")
    calibrate.add_argument("--dtype", default=None, help="the engine's dtype (default: $RERANKER_DTYPE, else auto)")
    _dataset_options(calibrate)
    calibrate.add_argument("--store", default=None, metavar="FILE", help="where scores are kept between runs "
                                                                         "(default: data/judgements.sqlite3)")

    finetune = commands.add_parser(
        "finetune", help="LoRA-tune a Qwen3-Reranker on a labelled dataset, proved on held-out queries",
        description="DATASET is an Evaluate dataset (a BEIR folder). Its labelled queries are split (seeded) into "
                    "training and held-out ones; training pairs are each query's relevant documents and the first "
                    "stage's top non-relevant ones (hard negatives); the loss is binary cross-entropy on the score "
                    "the engine serves. DIR gets the merged model (every backend opens it), adapter/, README.md and "
                    "evaluation.json: base against tuned on the held-out queries, with a paired t-test.")
    finetune.add_argument("dataset", metavar="DATASET")
    finetune.add_argument("--model", default=None, metavar="BASE", help="the model to tune: hub id or folder "
                                                                        "(default: $RERANKER_MODEL)")
    finetune.add_argument("--output", required=True, metavar="DIR", help="a new folder for the tuned model")
    finetune.add_argument("--hold-out", type=float, default=0.2, help="share of the labelled queries held out (0.2)")
    finetune.add_argument("--epochs", type=int, default=3)
    finetune.add_argument("--lora-rank", type=int, default=8)
    finetune.add_argument("--negatives-per-positive", type=int, default=8)
    finetune.add_argument("--learning-rate", type=float, default=2e-4)
    finetune.add_argument("--batch-size", type=int, default=8, help="pairs per step (8)")
    finetune.add_argument("--seed", type=int, default=0, help="the hold-out split's and the shuffling's seed (0)")
    finetune.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default: $RERANKER_DEVICE)")
    _dataset_options(finetune)


def _dataset_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=None, metavar="FIRST.trec", help="the first stage's run (default: BM25)")
    parser.add_argument("--top-k", type=int, default=100, help="documents of the first stage read per query (100)")
    parser.add_argument("--instruction", default=None, help="task instruction (default: web search)")
    parser.add_argument("--queries", default=None, help="TSV topics (id<TAB>text) instead of queries.jsonl")
    parser.add_argument("--qrels", default=None, help="TREC qrels instead of qrels/test.tsv")


def run_tune_command(args: argparse.Namespace) -> int:
    if args.command == "calibrate":
        from reranker.cli.calibrate_command import main as calibrate_main

        return calibrate_main(args)
    from reranker.cli.finetune_command import main as finetune_main

    return finetune_main(args)
