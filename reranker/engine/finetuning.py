"""Fine-tuning a Qwen3-Reranker with LoRA (peft) on labelled pairs, on exactly the score the engine serves.

The loss is binary cross-entropy on the served logit: the model card's prompt (built by the engine's PromptEncoder,
core/prompt.py spelling it), the last position's hidden state, the "yes" row minus the "no" row of the LM head
(YesNoHead). No listwise loss the model does not read, no other head: what is trained is what `Qwen3Reranker` then
scores. The decoder's linear layers get the adapters; the head is left as it is.

Each epoch ends with the held-out pairs' loss; when it rises the epoch's adapters are dropped and training stops (the
best epoch's are kept). The result is saved as a model folder every backend opens (the adapters merged into the
weights, float32) with the adapters themselves in `adapter/`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reranker.engine.encoding import PromptEncoder
from reranker.engine.loading import load_model, resolve_device
from reranker.engine.yes_no_head import YesNoHead

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class TrainingPair:
    query: str
    document: str
    relevant: bool
    instruction: str | None = None


@dataclass
class TuneOptions:
    epochs: int = 3
    lora_rank: int = 8
    learning_rate: float = 2e-4
    batch_size: int = 8
    max_length: int = 1024
    """Prompt tokens at most (documents cut from their end, as the engine cuts them)."""
    device: str | None = None
    seed: int = 0
    positive_weight: float = 1.0
    """BCE's weight of a relevant pair: above 1 when negatives are fewer than positives (the collapse guard)."""


@dataclass
class TuneProgress:
    """Told after each step: what `report` shows."""

    epoch: int
    epochs: int
    step: int
    steps: int
    """Steps of all epochs."""
    train_loss: float
    seconds_left: float


@dataclass
class TuneResult:
    epochs_run: int
    held_out_losses: list[float] = field(default_factory=list)
    """Before training, then after each epoch run."""
    train_losses: list[float] = field(default_factory=list)
    """Each epoch's mean training loss."""
    stopped_early: bool = False
    seconds: float = 0.0


class TrainableScorer:
    """The served logit of (query, document) pairs on a (LoRA-wrapped) causal LM, with gradients."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        self.model = model
        self.encoder = PromptEncoder(tokenizer, max_length)
        self.head = YesNoHead(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.device = next(model.parameters()).device
        self.head.weight = self.head.weight.to(self.device)
        self.head.bias = self.head.bias.to(self.device) if self.head.bias is not None else None

    def logits(self, pairs: Sequence[TrainingPair]) -> torch.Tensor:
        """log P(yes) - log P(no) of each pair, float32, as Qwen3Reranker computes it."""
        ids = [self.encoder.encode(p.query, [p.document], p.instruction)[0].input_ids for p in pairs]
        longest = max(len(i) for i in ids)
        tokens = torch.full((len(ids), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), longest), dtype=torch.long)
        for row, seq in enumerate(ids):
            tokens[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        decoder = self.model.get_decoder()
        hidden = decoder(input_ids=tokens.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
        last = hidden[torch.arange(len(ids), device=self.device), torch.tensor([len(i) - 1 for i in ids],
                                                                               device=self.device)]
        no_yes = self.head.no_yes_logits(last)
        return no_yes[:, 1] - no_yes[:, 0]

    def loss(self, pairs: Sequence[TrainingPair], positive_weight: float = 1.0) -> torch.Tensor:
        labels = torch.tensor([float(p.relevant) for p in pairs], device=self.device)
        return torch.nn.functional.binary_cross_entropy_with_logits(
            self.logits(pairs), labels, pos_weight=torch.tensor(positive_weight, device=self.device))

    @torch.no_grad()
    def mean_loss(self, pairs: Sequence[TrainingPair], batch_size: int, positive_weight: float = 1.0) -> float:
        total = 0.0
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start:start + batch_size]
            total += float(self.loss(batch, positive_weight)) * len(batch)
        return total / max(len(pairs), 1)


def with_adapters(model: PreTrainedModel, rank: int) -> PeftModel:
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=LORA_TARGETS, bias="none")
    return get_peft_model(model, config)


def finetune(base: str, train: Sequence[TrainingPair], held_out: Sequence[TrainingPair], output: Path,
             options: TuneOptions, report: Callable[[TuneProgress], None] = lambda progress: None) -> TuneResult:
    """LoRA on `base` (hub id or folder) over `train`, stopped early on `held_out`'s loss; saved into `output` as a
    merged model folder, its adapters in `output/adapter`."""
    torch.manual_seed(options.seed)
    device = resolve_device(options.device)
    tokenizer, model = load_model(base, device, torch.float32)
    model = with_adapters(model, options.lora_rank)
    scorer = TrainableScorer(model, tokenizer, options.max_length)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate)
    order, shuffler = list(train), random.Random(options.seed)
    steps_per_epoch = math.ceil(len(order) / options.batch_size)
    result = TuneResult(0, [scorer.mean_loss(held_out, options.batch_size)])
    best = _adapter_state(model)
    started = time.perf_counter()
    for epoch in range(options.epochs):
        shuffler.shuffle(order)
        model.train()
        losses = []
        for n, start in enumerate(range(0, len(order), options.batch_size)):
            loss = scorer.loss(order[start:start + options.batch_size], options.positive_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            done = epoch * steps_per_epoch + n + 1
            total = options.epochs * steps_per_epoch
            elapsed = time.perf_counter() - started
            report(TuneProgress(epoch + 1, options.epochs, done, total, sum(losses) / len(losses),
                            elapsed / done * (total - done)))
        model.eval()
        result.train_losses.append(sum(losses) / len(losses))
        result.held_out_losses.append(scorer.mean_loss(held_out, options.batch_size))
        result.epochs_run = epoch + 1
        if result.held_out_losses[-1] > min(result.held_out_losses[:-1]):
            result.stopped_early = True
            break
        best = _adapter_state(model)
    _restore(model, best)
    result.seconds = time.perf_counter() - started
    save_tuned(model, tokenizer, output)
    return result


def _adapter_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def _restore(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in state:
                p.copy_(state[name])


def save_tuned(model: PeftModel, tokenizer: PreTrainedTokenizerBase, output: Path) -> None:
    """The adapters into output/adapter, then the weights with them merged into output (a plain model folder)."""
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output / "adapter")
    merged = model.merge_and_unload()
    merged.save_pretrained(output)
    tokenizer.save_pretrained(output)


def base_with_adapter(base: str, adapter: Path, device: str | None = None) -> TrainableScorer:
    """The base model with the saved adapters applied (not merged): what a merged folder is checked against."""
    tokenizer, model = load_model(base, resolve_device(device), torch.float32)
    return TrainableScorer(PeftModel.from_pretrained(model, str(adapter)).eval(), tokenizer, 8192)
