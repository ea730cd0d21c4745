"""The model card's scoring code, kept as written: the baseline that tests and benchmarks measure against.

One padded batch (left padding), full-vocabulary logits, P(yes) from a softmax over [no, yes] at the last
position. With `plain_user_text=True` every special or added token string in the user turn (`<|im_end|>`,
`<think>`) is read as plain text, as the engine does; for ordinary text the ids are the card's own. With
False (the default) it is the card to the letter, which lets a document close its own turn.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reranker.core.prompt import ASSISTANT_SUFFIX, NO_TOKEN, SYSTEM_PREFIX, YES_TOKEN, user_turn
from reranker.engine.encoding import plain_text_tokenizer


@torch.no_grad()
def model_card_scores(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    query: str,
    documents: list[str],
    instruction: str | None = None,
    max_length: int = 8192,
    plain_user_text: bool = False,
) -> list[float]:
    prefix_tokens = tokenizer.encode(SYSTEM_PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(ASSISTANT_SUFFIX, add_special_tokens=False)
    pairs = [user_turn(query, doc, instruction) for doc in documents]
    limit = max_length - len(prefix_tokens) - len(suffix_tokens)
    if plain_user_text:
        plain = plain_text_tokenizer(tokenizer)
        inputs = {"input_ids": [e.ids[:limit] for e in plain.encode_batch(pairs, add_special_tokens=False)]}
    else:
        inputs = tokenizer(
            pairs, padding=False, truncation="longest_first", return_attention_mask=False, max_length=limit
        )
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
    tokenizer.padding_side = "left"
    inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    batch_scores = model(**inputs).logits[:, -1, :]
    true_vector = batch_scores[:, tokenizer.convert_tokens_to_ids(YES_TOKEN)]
    false_vector = batch_scores[:, tokenizer.convert_tokens_to_ids(NO_TOKEN)]
    batch_scores = torch.stack([false_vector, true_vector], dim=1)
    batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
    return batch_scores[:, 1].exp().tolist()
