"""What a long document costs: one 8,000-token document read as one window, and as passages of 512 and 256 tokens;
and a 30,000-token document, which one window (8,192 tokens) cannot hold, as passages. Each configuration runs in a
child process, so its peak memory (max RSS) is its own.

    .venv/bin/python bench/long_documents.py [--model bench/out/qwen3-reranker-0.6b-random]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from corpus import EN_WORDS

ROOT = Path(__file__).resolve().parents[1]
QUERY = "how to improve search engine ranking"


def document(tokens: int, tokenizer_dir: Path, seed: int = 3) -> str:
    """English sentences of 8-25 words until the document has about `tokens` tokens (the model's tokenizer)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    rng = random.Random(seed)
    sentences: list[str] = []
    count = 0
    while count < tokens:
        sentence = " ".join(rng.choice(EN_WORDS) for _ in range(rng.randint(8, 25))).capitalize() + "."
        sentences.append(sentence)
        count += len(tokenizer(" " + sentence, add_special_tokens=False)["input_ids"])
    return " ".join(sentences)


def child(model: str, text_file: str, passage_tokens: int | None) -> None:
    """One configuration: load, warm up on a short document, then judge the long one; print JSON."""
    from reranker import Query, Qwen3Reranker

    text = Path(text_file).read_text(encoding="utf-8")
    engine = Qwen3Reranker(model=model, device="cpu")
    engine.judge(QUERY, ["A short warm-up document."])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    [[judged]] = engine.judge_many([Query(QUERY, [text], passage_tokens=passage_tokens)])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "grown_mb": (peak - before) / 1024,
                      "tokens": judged.tokens, "truncated": judged.truncated,
                      "passages": len(judged.passages or ())}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"))
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, text_file, tokens = args.child
        child(model, text_file, int(tokens) or None)
        return
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    runs = [(8_000, 0), (8_000, 512), (8_000, 256), (30_000, 0), (30_000, 512)]
    for size in sorted({s for s, _ in runs}):
        (out / f"long-{size}.txt").write_text(document(size, Path(args.model)), encoding="utf-8")
    for size, tokens in runs:
        done = subprocess.run([sys.executable, __file__, "--child", args.model, str(out / f"long-{size}.txt"),
                               str(tokens)], capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            print(f"{size:,} tokens, {'one window' if not tokens else f'passages of {tokens}'}: failed: "
                  f"{done.stderr[-500:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        how = "one window" if not tokens else f"passages of {tokens}"
        print(f"{size:,}-token document, {how}: {r['seconds']:.1f} s, peak RSS {r['peak_mb']:,.0f} MB "
              f"(+{r['grown_mb']:,.0f} MB while judging), {r['passages']} passages, {r['tokens']:,} prompt tokens "
              f"read, truncated {r['truncated']}", flush=True)


if __name__ == "__main__":
    main()
