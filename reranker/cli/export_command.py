"""`python -m reranker export MODEL --to seq-cls OUT`: a Qwen3-Reranker saved as a sequence classifier
(engine/seq_cls_export.py). Exit status 2 when OUT is in the way, 1 when MODEL cannot be loaded or converted."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"error: {out} already exists and is not an empty folder; give a new folder to export into",
              file=sys.stderr)
        return 2
    from reranker.core.failures import RerankerError
    from reranker.engine.seq_cls_export import export_seq_cls

    print(f"[reranker export] loading {args.model} ...", file=sys.stderr, flush=True)
    try:
        export_seq_cls(args.model, out)
    except RerankerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.model} saved as a sequence classifier in {out}; how to serve it, and the two halves of the "
          f"prompt each server must be sent: {out / 'README.md'}")
    return 0
