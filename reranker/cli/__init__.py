"""The command line, `python -m reranker` (or `qwen-ranker`): `rank` ranks a file of documents; `batch` scores a
file of pairs on Ray (cli/ray_batch.py); `serve` starts the HTTP API alone; `workbench` the pages and the API on one
port (reranker/sidecar/one_port.py). `batch`, `serve` and `workbench` need their pip extras."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from reranker.core.environment import HOST, SERVER, SERVER_KEY
from reranker.formats.documents import document_lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reranker", description="Qwen3-Reranker from the command line")
    commands = parser.add_subparsers(dest="command", required=True)

    rank = commands.add_parser("rank", help="rank the documents of a file (one per line) against a query")
    rank.add_argument("--query", required=True)
    rank.add_argument("--docs", required=True, help="text file, one document per line; - reads standard input")
    rank.add_argument("--instruction", default=None, help="task instruction (default: web search)")
    rank.add_argument("--top-k", type=int, default=None)
    rank.add_argument("--format", choices=("table", "json", "csv"), default="table")
    _passage_options(rank)
    _engine_options(rank)
    _calibration_option(rank)

    batch = commands.add_parser(
        "batch", help="score a file of (query, document) pairs on Ray Data, here or on a cluster",
        description="INPUT and OUTPUT are .csv, .tsv, .jsonl or .parquet (by suffix). INPUT has a query and a "
                    "document column, optionally label and instruction; OUTPUT has its rows with score, logit and "
                    "rank within the query.")
    batch.add_argument("input", metavar="INPUT")
    batch.add_argument("--output", required=True, metavar="OUTPUT")
    batch.add_argument("--instruction", default=None, help="for rows without their own (default: web search)")
    where = batch.add_mutually_exclusive_group()
    where.add_argument("--model", default=None, help="hub id or local folder, loaded in each worker")
    where.add_argument("--server", default=None, help="score on this server instead ($RERANKER_SERVER)")
    batch.add_argument("--ray", default=None, metavar="ADDRESS", help="join this Ray cluster (default: a local Ray)")
    batch.add_argument("--workers", type=int, default=1)
    batch.add_argument("--gpus-per-worker", type=float, default=0.0)
    _passage_options(batch)
    _dtype_option(batch)
    _calibration_option(batch)

    evaluate = commands.add_parser(
        "evaluate", help="rerank a first stage's run on a labelled dataset and measure before and after",
        description="DATASET is a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv). Each query's top K of "
                    "the first stage's run (--run, a TREC run; without: BM25 over the corpus) are reranked by the "
                    "model; nDCG@10, RR@10, R@100 and AP (and --measures) before and after, with trec_eval's "
                    "definitions, and a paired t-test of each. Scores are kept on disk: a second run, or one that "
                    "was stopped, scores only what is new (docs/EVALUATE.md).")
    evaluate.add_argument("dataset", metavar="DATASET")
    evaluate.add_argument("--run", default=None, metavar="FIRST.trec", help="the first stage's run (default: BM25)")
    evaluate.add_argument("--top-k", default=None, metavar="K[,K...]", help="documents reranked per query (default "
                          "100); several depths separated by commas (10,20,50,100) sweep them from one scoring")
    evaluate.add_argument("--first-stage", default="bm25", metavar="bm25|dense:MODEL|hybrid:MODEL",
                          help="without --run: BM25, exact search with a sentence-transformers embedding model, or "
                               "both fused by reciprocal rank (default bm25)")
    evaluate.add_argument("--output", default=None, metavar="OUT.trec", help="write the reranked run here")
    evaluate.add_argument("--json", default=None, metavar="METRICS.json", help="write the figures here")
    evaluate.add_argument("--instruction", action="append", default=None,
                          help="task instruction; repeat it to evaluate several (default: web search)")
    evaluate.add_argument("--measures", nargs="+", default=None, help="more measures, as ir-measures names them "
                                                                      "(P@5 nDCG@20 Success@1 ...)")
    evaluate.add_argument("--queries", default=None, help="TSV topics (id<TAB>text) instead of queries.jsonl")
    evaluate.add_argument("--qrels", default=None, help="TREC qrels instead of qrels/test.tsv")
    evaluate.add_argument("--ray", default=None, metavar="ADDRESS", help="score on Ray ('local', or a cluster's "
                                                                          "address)")
    _passage_options(evaluate)
    _dtype_option(evaluate)
    _calibration_option(evaluate)
    evaluate.add_argument("--store", default=None, metavar="FILE", help="where scores are kept between runs "
                                                                        "(default: data/judgements.sqlite3)")
    evaluate_where = evaluate.add_mutually_exclusive_group()
    evaluate_where.add_argument("--model", action="append", default=None,
                                help="hub id or local folder (a Qwen3-Reranker or a cross-encoder); repeat it to "
                                     "compare models")
    evaluate_where.add_argument("--server", default=None, help="score on this server ($RERANKER_SERVER)")

    from reranker.cli.tune_arguments import add_tune_commands

    add_tune_commands(commands)

    verify = commands.add_parser(
        "verify", help="check that a deployment (a server, a quantized or converted model) scores as the model does",
        description="TARGET: an address (.../v1/rerank, /v2/rerank, /rerank, /score, or a base address: each rerank "
                    "address it offers), called as RAG clients call it; a model in another dtype ('MODEL (int8)'); "
                    "or a converted checkpoint folder. The reference is the exact engine on the same weights here. "
                    "Exit status 1 when the target is wrong, 2 when it could not be checked (docs/VERIFY.md).")
    verify.add_argument("target", metavar="TARGET")
    verify.add_argument("--reference", default=None, metavar="MODEL",
                        help="hub id or folder of the weights the target serves (default: the model it says)")
    verify.add_argument("--backend", action="store_true",
                        help="check what this project's own backend for that server gets (it builds the prompt)")
    verify.add_argument("--prompt-halves", action="store_true",
                        help="send the model card's prompt in two halves, as the clients of a seq-cls export must "
                             "(TEI, Infinity; see the export's README)")
    verify.add_argument("--key", default=None, help="the target server's API key (default $RERANKER_SERVER_KEY)")
    verify.add_argument("--drift", type=float, default=0.05, help="largest |dp| of an approximate target (0.05)")
    verify.add_argument("--max-length", type=int, default=8192,
                        help="the reference's prompt tokens at most: the server's limit when smaller (8192)")
    verify.add_argument("--dataset", default=None, metavar="DIR", help="also rerank this BEIR folder's first stage "
                                                                       "with both, and compare the measures")
    verify.add_argument("--run", default=None, metavar="FIRST.trec", help="the dataset's first stage (default BM25)")
    verify.add_argument("--top-k", type=int, default=10, help="documents reranked per query with --dataset (10)")
    verify.add_argument("--instruction", default=None, help="the instruction for --dataset (default: web search)")
    verify.add_argument("--json", default=None, metavar="REPORT.json", help="write the report here")

    export = commands.add_parser(
        "export", help="save a Qwen3-Reranker in another form: --to seq-cls, a sequence classifier for TEI, "
                       "Infinity, vLLM's score task and sentence-transformers' CrossEncoder",
        description="MODEL (a hub id or a folder) is saved into the new folder OUT as a one-label sequence "
                    "classifier whose logit is the model card's log P(yes) - log P(no), with its tokenizer and a "
                    "README.md on serving it and the two prompt halves each server must be sent.")
    export.add_argument("model", metavar="MODEL")
    export.add_argument("--to", required=True, choices=("seq-cls",), help="the form to save it in")
    export.add_argument("out", metavar="OUT", help="a new (or empty) folder")

    serve = commands.add_parser("serve", help="the HTTP API alone (a GPU box, behind a gateway)")
    _listen_options(serve, default_port=8502)

    workbench = commands.add_parser("workbench", help="the workbench's pages and the whole HTTP API on one port, in "
                                                      "one process (what ./start.sh runs)")
    _listen_options(workbench, default_port=8501)

    args = parser.parse_args(argv)
    missing = _missing_extra(args.command)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    if args.command == "export":
        from reranker.cli.export_command import main as export_main

        return export_main(args)
    if args.command == "serve":
        from reranker.sidecar.server import serve as run_server

        run_server(args.host, args.port, args.allow_open)
        return 0
    if args.command == "workbench":
        return _workbench(args)
    if args.command == "batch":
        return _batch(args)
    if args.command == "verify":
        from reranker.cli.verify_command import main as verify_main

        args.key = args.key or SERVER_KEY.read()
        return verify_main(args)
    if args.command in ("calibrate", "finetune"):
        from reranker.cli.tune_arguments import run_tune_command

        args.backend, args.key = _backend_spec(getattr(args, "model", None), getattr(args, "server", None))
        return run_tune_command(args)
    if args.command == "evaluate":
        from reranker.cli.evaluate_command import main as evaluate_main

        models = args.model or [None]
        args.backend, args.key = _backend_spec(models[0], args.server)
        args.more_models = models[1:]
        return evaluate_main(args)
    return _rank(args)


_SERVER_MODULES = ("fastapi", "uvicorn", "multipart", "prometheus_client", "fastapi_offline")
EXTRAS = {"serve": ("server", _SERVER_MODULES), "batch": ("ray", ("ray",)),
          "evaluate": ("eval", ("ir_measures", "scipy", "bm25s")), "verify": ("eval", ("ir_measures", "scipy")),
          "calibrate": ("eval,tune", ("ir_measures", "scipy", "bm25s", "sklearn")),
          "finetune": ("eval,tune", ("ir_measures", "scipy", "bm25s", "peft")),
          "workbench": ("server,ui", (*_SERVER_MODULES, "streamlit", "plotly"))}
"""What a command needs beyond the engine: the pip extra that brings it, and the modules it imports."""


def _missing_extra(command: str) -> str | None:
    """Why `command` cannot run here, when an extra it needs is not installed."""
    if command not in EXTRAS:
        return None
    extra, modules = EXTRAS[command]
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return (f"`{command}` needs {', '.join(absent)}, which this installation lacks; install the {extra!r} extra: "
            f"pip install 'qwen-ranker-pro[{extra}]' (from a clone: pip install '.[{extra}]')")


def _listen_options(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default=HOST.read(),
                        help="address to listen on ($RERANKER_HOST; default 127.0.0.1, this machine only; 0.0.0.0: "
                             "every interface, which needs RERANKER_API_KEY)")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--allow-open", action="store_true",
                        help="listen beyond this machine without RERANKER_API_KEY, on purpose ($RERANKER_ALLOW_OPEN=1)")


def _workbench(args: argparse.Namespace) -> int:
    from reranker.core.addresses import addresses_to_open
    from reranker.sidecar.server import checked_start

    settings, data_lock = checked_start("workbench", args.host, args.port, args.allow_open)
    from reranker.sidecar.one_port import PAGES, run, workbench_app

    if not PAGES.is_file():
        print(f"reranker workbench: the pages ({PAGES.name}, views/, assets/) are not beside this package, at "
              f"{PAGES.parent}: they come with a clone of the repository, not with pip. Run it from a clone, or "
              "`python -m reranker serve` for the API alone.", file=sys.stderr)
        return 2

    app = workbench_app(settings, data_lock)
    opens = "  ".join(addresses_to_open(args.host, args.port))
    print(f"[reranker workbench] the pages and the API (docs: /docs) on one port: {opens}", file=sys.stderr,
          flush=True)
    run(app, args.host, args.port)
    return 0


def _passage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--passage-tokens", type=int, default=None, metavar="N",
                        help="read each document as passages of at most N tokens; the best passage stands for it")
    parser.add_argument("--max-passages", type=int, default=None, metavar="M",
                        help="with --passage-tokens: read at most M passages of a document")


def _dtype_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", default=None, help="auto (float32 on a CPU, bfloat16 on CUDA), float32, "
                        "bfloat16, float16, int8: the approximate CPU mode, about 3x faster, its scores named "
                        "with (int8), or fast: bfloat16 where the CPU has AVX512-BF16 or AMX, else int8 "
                        "(default: $RERANKER_DTYPE, else auto)")


def _calibration_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calibration", default=None, metavar="CAL.json",
                        help="read scores through this calibration (python -m reranker calibrate): P(relevant) on "
                             "its labels; the ranking is unchanged, the model's name carries (calibrated ...)")


def _engine_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--model", default=None, help="hub id or local folder (default: $RERANKER_MODEL or 0.6B)")
    where.add_argument("--server", default=None, help="score on this server instead ($RERANKER_SERVER; its key: "
                                                      "$RERANKER_SERVER_KEY)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (default: $RERANKER_DEVICE, "
                        "else auto)")
    _dtype_option(parser)
    parser.add_argument("--max-length", type=int, default=8192)


def _rank(args: argparse.Namespace) -> int:
    from reranker.backends import open_backend
    from reranker.core.calibrated import CalibratedBackend, CalibrationError, load_calibration
    from reranker.core.failures import ModelLoadError, RerankerError, UnsupportedOption
    from reranker.core.ranking import Query
    from reranker.formats.exports import export_csv, export_json, export_records

    try:
        text = sys.stdin.read() if args.docs == "-" else Path(args.docs).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: cannot read documents from {args.docs}: {e}", file=sys.stderr)
        return 2
    documents = [line for _, line in document_lines(text)]
    if not documents:
        print(f"error: {args.docs} holds no documents (one per line, blank lines are skipped)", file=sys.stderr)
        return 2
    if args.top_k is not None and args.top_k < 1:
        print("error: --top-k must be at least 1", file=sys.stderr)
        return 2
    try:
        calibration = load_calibration(args.calibration) if args.calibration else None
    except CalibrationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    spec, key = _backend_spec(args.model, args.server)
    try:
        backend = open_backend(spec, key, device=args.device, dtype=args.dtype, max_length=args.max_length)
        backend = CalibratedBackend(backend, calibration, args.calibration) if calibration else backend
        [ranked] = backend.rank_many([Query(args.query, documents, args.instruction, passage_tokens=args.passage_tokens,
                                            max_passages=args.max_passages)], args.top_k)
    except (ModelLoadError, RerankerError, UnsupportedOption, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    records = export_records(ranked, args.query, args.instruction, backend.model_name)
    if args.format == "json":
        print(export_json(records))
    elif args.format == "csv":
        sys.stdout.buffer.write(export_csv(records))
    else:
        print(f"{'rank':>4}  {'score':<6}  {'log-odds':>8}  {'input':<5} document")
        for r in records:
            text = r["document"] if len(r["document"]) <= 80 else r["document"][:77] + "..."
            cut = " [truncated]" if r["truncated"] else ""
            start = r.get("passage_start")
            where = f" [best passage {start}-{r['passage_end']}]" if start is not None else ""
            print(f"{r['rank']:>4}  {r['score']:.4f}  {r['logit']:+8.3f}  #{r['index']:<4} {text}{cut}{where}")
    return 0


def _backend_spec(model: str | None, server: str | None) -> tuple[str | None, str | None]:
    """--server, --model, else $RERANKER_SERVER (with its key), else the default model."""
    from reranker.backends import server_from_env

    if server:
        return server, SERVER_KEY.read()
    if model:
        return model, None
    return server_from_env() if SERVER.read() else (None, None)


def _batch(args: argparse.Namespace) -> int:
    from reranker.cli.ray_batch import BatchFailed, BatchOptions, run_batch_file
    from reranker.formats.tables import TableError

    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    from reranker.core.calibrated import CalibrationError, load_calibration

    spec, key = _backend_spec(args.model, args.server)
    try:
        calibration = load_calibration(args.calibration).document() if args.calibration else None
    except CalibrationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    options = BatchOptions(backend=spec, key=key, instruction=args.instruction, ray_address=args.ray,
                           workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                           passage_tokens=args.passage_tokens, max_passages=args.max_passages, dtype=args.dtype,
                           calibration=calibration)
    try:
        run_batch_file(args.input, args.output, options)
    except (TableError, BatchFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
