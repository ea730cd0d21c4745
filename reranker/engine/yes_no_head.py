"""The model card's score head: of the whole LM head, only the rows of "yes" and "no".

The card computes every vocabulary logit at the last position and keeps two of them; their difference is all a
score needs: logit = (lm_head[yes] - lm_head[no]) · h, and P(yes) = sigmoid(logit), the softmax over [no, yes]
the card takes. Only those two rows are kept, in float32 whatever the model's dtype, so a bfloat16 or int8 decoder
(engine/int8.py) still meets the head at full precision.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reranker.core.prompt import NO_TOKEN, YES_TOKEN

Verdict = tuple[float, float]
"""(P(yes), log P(yes) - log P(no)) of one prompt: a Judgement's score and logit."""


class YesNoHead:
    """Turns each prompt's last hidden state into its (score, logit), as the model card does.

    It copies its two rows from the model's own LM head (never quantized: engine/int8.py quantizes the decoder only).
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.yes_id = single_token_id(tokenizer, YES_TOKEN)
        self.no_id = single_token_id(tokenizer, NO_TOKEN)
        lm_head = model.get_output_embeddings()
        rows = [self.no_id, self.yes_id]  # the card's order: [no, yes]
        self.weight = lm_head.weight[rows].detach().float()
        """(2, hidden size): the "no" and "yes" rows of the LM head, a float32 copy."""
        bias = getattr(lm_head, "bias", None)
        self.bias = bias[rows].detach().float() if bias is not None else None

    def no_yes_logits(self, last_hidden: torch.Tensor) -> torch.Tensor:
        """(n, 2): the "no" and "yes" vocabulary logits of each row of `last_hidden` (n, hidden size)."""
        no_yes = last_hidden.float() @ self.weight.T
        return no_yes + self.bias if self.bias is not None else no_yes

    def __call__(self, last_hidden: torch.Tensor) -> list[Verdict]:
        """(score, logit) of each prompt, from its last position's hidden state (one row of `last_hidden`).

        The score is taken as the card takes it (log_softmax over [no, yes], then exp) rather than as
        sigmoid(logit): the same number, to the card's last bit."""
        no_yes = self.no_yes_logits(last_hidden)
        scores = torch.log_softmax(no_yes, dim=1)[:, 1].exp()
        logits = no_yes[:, 1] - no_yes[:, 0]
        return list(zip(scores.tolist(), logits.tolist()))


def single_token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """The id of `token`, which must be one token of the vocabulary (as "yes" and "no" are in Qwen3's)."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no single token {token!r}; is this a Qwen3-Reranker tokenizer?")
    return token_id
