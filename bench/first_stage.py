"""What a dense first stage and a depth sweep cost, on the full-size shapes (random weights, the real Qwen3 tokenizer):
a Qwen3-Embedding-0.6B-shaped sentence-transformers model (Qwen3Model, last-token pooling, its query prompt) embeds
documents (documents/s), a query is embedded and searched exactly over the corpus (ms), and `evaluate --top-k
2,5,10` on the sample with the 0.6B reranker gives each depth's seconds per query.

    flock /tmp/heavy.lock .venv/bin/python bench/first_stage.py [--search-documents 200000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
SHARED = Path("/work/shared/models/qwen3-reranker-0.6b")
EMBEDDER = ROOT / "bench" / "out" / "qwen3-embedding-0.6b-random"
RERANKER = ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"
SAMPLE = ROOT / "assets" / "eval_sample"
QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
"""Qwen3-Embedding's own query prompt (its config_sentence_transformers.json)."""


def build_embedder() -> Path:
    """Qwen3-Embedding-0.6B's shape (the Qwen3-0.6B decoder without its head), random weights in bfloat16, saved as
    sentence-transformers saves the real one: last-token pooling, normalized, the query prompt, left padding."""
    if (EMBEDDER / "modules.json").exists():
        return EMBEDDER
    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig, AutoTokenizer, Qwen3Model

    print(f"building the random-weight embedding model in {EMBEDDER} (once)", file=sys.stderr)
    bare = EMBEDDER.with_name(EMBEDDER.name + "-bare")
    config = AutoConfig.from_pretrained(SHARED)
    torch.manual_seed(0)
    model = Qwen3Model(config).to(torch.bfloat16)
    model.config.architectures = ["Qwen3Model"]
    model.save_pretrained(bare)
    tokenizer = AutoTokenizer.from_pretrained(SHARED)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(bare)
    del model
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(bare), model_kwargs={"dtype": torch.float32}, max_seq_length=8192)
    encoder = SentenceTransformer(modules=[transformer, Pooling(config.hidden_size, "lasttoken"), Normalize()],
                                  device="cpu", prompts={"query": QUERY_PROMPT, "document": ""})
    encoder.save(str(EMBEDDER))
    return EMBEDDER


def embedding_speed(embedder, texts: list[str], label: str) -> None:
    started = time.perf_counter()
    embedder.embed_documents(texts)
    seconds = time.perf_counter() - started
    print(f"| embed {label} | {len(texts)} | {seconds:.1f} s | {len(texts) / seconds:.1f} documents/s |")


def query_latency(embedder, documents: int) -> None:
    from reranker.analysis.dense_retrieval import exact_search

    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((documents, embedder.dimensions), dtype=np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    ids = [f"d{n}" for n in range(documents)]
    queries = ["what is the capital of china", "如何提高睡眠质量", "why is the sky blue at noon", "python sort a list"]
    embed, search = [], []
    for text in queries * 2:
        started = time.perf_counter()
        vector = embedder.embed_queries([text])
        embed.append(time.perf_counter() - started)
        started = time.perf_counter()
        exact_search(vector, corpus, ids, 100)
        search.append(time.perf_counter() - started)
    print(f"| one query: embed (with its prompt) | - | {1000 * float(np.median(embed)):.0f} ms | median of 8 |")
    print(f"| one query: exact search, top 100 of {documents:,} ({embedder.dimensions} dims, "
          f"{corpus.nbytes / 1e9:.2f} GB) | "
          f"{documents:,} | {1000 * float(np.median(search)):.0f} ms | median of 8 |")


def depth_costs() -> None:
    from reranker.cli.evaluate_command import EvaluateOptions, evaluate

    if not (RERANKER / "config.json").exists():
        from bench_engine import build_model

        build_model()
    with tempfile.TemporaryDirectory() as folder:
        options = EvaluateOptions(dataset=SAMPLE, run=SAMPLE / "bm25.trec", top_k=2, depths=[2, 5, 10],
                                  backend=str(RERANKER), store=Path(folder) / "judgements.sqlite3")
        summary = evaluate(options).summary
    print("\n| top K | pairs per query | seconds per query | first stage R@K |\n|---|---|---|---|")
    for depth in summary["depths"]:
        print(f"| {depth['top_k']} | {depth['pairs_per_query']:.1f} | {depth['seconds_per_query']:.2f} | "
              f"{depth['first_stage_recall']:.3f} |")
    print(json.dumps(summary["suggested_top_k"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--search-documents", type=int, default=200_000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    from reranker.engine.embeddings import EmbeddingModel
    from reranker.formats.retrieval import read_documents

    encoder = EmbeddingModel(str(build_embedder()), device="cpu")
    sample = list(read_documents(SAMPLE / "corpus.jsonl").values())
    long = [" ".join(sample[n:n + 12]) for n in range(0, 96, 3)]  # 32 documents of about 12 sentences
    print("| what | documents | time | rate |\n|---|---|---|---|")
    embedding_speed(encoder, sample, "the sample's 120 one-sentence documents")
    embedding_speed(encoder, long, "32 documents of about 12 sentences (200-300 tokens)")
    query_latency(encoder, args.search_documents)
    depth_costs()


if __name__ == "__main__":
    main()
