"""Fine-tuning's cost on the full-size shape: LoRA training steps (forward and backward through the served logit, as
`python -m reranker finetune` runs them, engine/finetuning.py) on prompts of about 256 tokens, pairs per second, and
what an epoch over 1,000 labelled pairs costs; the held-out loss's forward-only pairs per second beside it.

    flock /tmp/heavy.lock .venv/bin/python bench/finetune.py [--model bench/out/qwen3-reranker-0.6b-random]
        [--batch-size 4] [--steps 4] [--lora-rank 8] [--device cpu]

Random weights: the arithmetic and memory are the real model's, the loss values mean nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import sys
import time
from pathlib import Path

import torch
from corpus import EN_WORDS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = ROOT / "bench" / "out" / "qwen3-reranker-0.6b-random"


def pairs_of(count: int, tokens: int, tokenizer, seed: int = 3) -> list:
    """`count` pairs whose prompts are about `tokens` tokens long (the prompt's fixed part included)."""
    from reranker.engine.encoding import PromptEncoder
    from reranker.engine.finetuning import TrainingPair

    rng, encoder = random.Random(seed), PromptEncoder(tokenizer, 8192)
    out = []
    for n in range(count):
        words = [rng.choice(EN_WORDS) for _ in range(tokens)]
        query = "how does gravity shape the orbits of planets"
        while len(encoder.encode(query, [" ".join(words)])[0].input_ids) > tokens:
            words = words[:-5]
        out.append(TrainingPair(query, " ".join(words), n % 4 == 0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps (after one warm-up step)")
    parser.add_argument("--tokens", type=int, default=256, help="prompt tokens per pair")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not (Path(args.model) / "config.json").exists():
        sys.exit(f"{args.model}: no model; build it with bench/bench_engine.py first (or pass --model)")

    from reranker.engine.finetuning import TrainableScorer, with_adapters
    from reranker.engine.loading import load_model, resolve_device

    device = resolve_device(args.device)
    started = time.perf_counter()
    tokenizer, model = load_model(args.model, device, torch.float32)
    model = with_adapters(model, args.lora_rank)
    load_s = time.perf_counter() - started
    scorer = TrainableScorer(model, tokenizer, 8192)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    pairs = pairs_of(args.batch_size * (args.steps + 1), args.tokens, tokenizer)
    batches = [pairs[i:i + args.batch_size] for i in range(0, len(pairs), args.batch_size)]

    def step(batch: list) -> None:
        loss = scorer.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.train()
    step(batches[0])  # warm-up
    times = []
    for batch in batches[1:]:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        print(f"step {len(times)}/{args.steps}: {times[-1]:.1f} s", file=sys.stderr, flush=True)
    model.eval()
    t = time.perf_counter()
    scorer.mean_loss(pairs[:args.batch_size * 2], args.batch_size)
    forward_s = time.perf_counter() - t
    train_rate = args.batch_size * len(times) / sum(times)
    forward_rate = args.batch_size * 2 / forward_s
    result = {
        "model": args.model, "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "batch_size": args.batch_size,
        "prompt_tokens": sum(len(scorer.encoder.encode(p.query, [p.document])[0].input_ids) for p in pairs)
        / len(pairs),
        "lora_rank": args.lora_rank, "trainable_parameters": trainable, "load_s": load_s,
        "step_s": times, "train_pairs_per_s": train_rate, "held_out_forward_pairs_per_s": forward_rate,
        "epoch_of_1000_pairs_s": 1000 / train_rate,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
