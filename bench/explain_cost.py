"""What a card's "Why?" costs: explain() on a 10-sentence document against scoring that document alone, on the
full-size model (random weights, real tokenizer). explain() scores the document and it without each sentence in
one call: 11 pairs sharing the query's prefix.

    .venv/bin/python bench/explain_cost.py [--model bench/out/qwen3-reranker-0.6b-random] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from reranker import Qwen3Reranker, explain

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "models" / "qwen3-reranker-0.6b"
DEFAULT_MODEL_DIR = ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"
QUERY = "How does a city become the capital of a country?"
ENGLISH = ("Beijing has been the capital of China for most of the last eight centuries. The city sits on the "
           "northern edge of the North China Plain. Its role began when the Yuan dynasty built Dadu there in 1267. "
           "The Ming moved the court back from Nanjing in 1421. Capitals are usually chosen for defence, trade and "
           "the ruler's power base. Some countries build new capitals on purpose, like Brasilia or Canberra. "
           "Others keep an old city because moving ministries is costly. A capital hosts the government, the "
           "parliament and most embassies. It is not always the largest city, as Shanghai shows for China. "
           "Tourists visit the Forbidden City, which was the imperial palace.")
CHINESE = ("北京是中国的首都，也是全国的政治和文化中心。北京位于华北平原的北部边缘。元朝在一二六七年于此修建大都。"
           "明朝在一四二一年把朝廷从南京迁回北京。首都的选择通常考虑防御、贸易和统治者的根基。"
           "有些国家会专门建设新首都，比如巴西利亚和堪培拉。也有国家因为搬迁部委成本太高而保留旧都。"
           "首都通常设有政府、议会和大多数使馆。首都不一定是最大的城市，上海就是一个例子。"
           "游客常去参观故宫，那里曾是皇宫。")


def model_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    if not (DEFAULT_MODEL_DIR / "config.json").exists():
        from reranker.testing.random_models import build_random_model

        print(f"building the random-weight 0.6B model in {DEFAULT_MODEL_DIR} (once)", file=sys.stderr)
        build_random_model(DEFAULT_MODEL_DIR, tokenizer_dir=SHARED, config_path=SHARED / "config.json")
    return DEFAULT_MODEL_DIR


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--long", type=int, default=0, metavar="N",
                        help="also a document of the English text N times over (its first 40 sentences explained)")
    parser.add_argument("--no-shared-beginnings", action="store_true",
                        help="as before the versions of a document read their shared beginning from one pass")
    args = parser.parse_args()
    if args.no_shared_beginnings:
        import reranker.engine.qwen3_reranker as engine_module

        engine_module._SHARED_DOCUMENT_TOKENS = 1 << 30
    engine = Qwen3Reranker(model=str(model_dir(args.model)), device="cpu")
    engine.judge(QUERY, ["warm-up"])
    print("| document | sentences | its tokens | score alone | explain() | pairs | explain / alone |")
    print("|---|---|---|---|---|---|---|")
    documents = [("English", ENGLISH), ("Chinese", CHINESE)]
    if args.long:
        documents.append((f"English x{args.long}", " ".join([ENGLISH] * args.long)))
    for name, document in documents:
        # each call scores afresh: the engine keeps no scores between calls, only the instruction's prefix
        alone = median_seconds(lambda document=document: engine.judge(QUERY, [document]), args.repeat)
        spans = explain(engine, QUERY, document)
        tokens = engine.judge(QUERY, [document])[0].tokens
        explained = median_seconds(lambda document=document: explain(engine, QUERY, document), args.repeat)
        print(f"| {name} | {len(spans)} | {tokens} | {alone:.2f} s | {explained:.2f} s | {len(spans) + 1} | "
              f"{explained / alone:.1f}x |")


if __name__ == "__main__":
    main()
