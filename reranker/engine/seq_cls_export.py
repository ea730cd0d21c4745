"""Qwen3-Reranker as a sequence classifier: the form TEI, Infinity, vLLM's score task and sentence-transformers'
CrossEncoder serve (`python -m reranker export MODEL --to seq-cls OUT`).

The model card's score needs two rows of the LM head (YesNoHead): logit = (lm_head[yes] - lm_head[no]) · h at the
last position. A <Arch>ForSequenceClassification with one label computes exactly score.weight · h at the last token
that is not padding; with that one row as its weight, sigmoid(logit) = P(yes), given the text as the pair
(query part, document part) of `core.prompt.prompt_halves`. The decoder's weights are the source's own (shared,
not copied), in its dtype.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

from reranker.core.failures import BadRequest
from reranker.core.prompt import DEFAULT_INSTRUCTION, PAIR_END, classifier_pair
from reranker.engine.loading import load_model
from reranker.engine.yes_no_head import YesNoHead

PROMPT_MARKER = "qwen_ranker_prompt"
"""The config.json field an export writes: its value, PROMPT_FORM, says each pair is `core.prompt.classifier_pair`'s
(the backend over CrossEncoder reads it, engine/cross_encoder.py)."""
PROMPT_FORM = "qwen3-reranker classifier_pair v3"
PAIR_ENDS = {PROMPT_FORM: PAIR_END, "qwen3-reranker classifier_pair v2": "\n\n"}
"""What each form's tokenizer adds after text 2: v3 the prompt's whole end (`core.prompt.PAIR_END`), v2 (2026-12-07)
its final line breaks only. (An export made before its tokenizer had a pair template says "qwen3-reranker
prompt_halves": sent whole halves, engine/cross_encoder.py.)"""
SERVED_MAX_LENGTH = 8192
"""The model card's max_length, written as the tokenizer's limit: servers that cut pairs to it (sentence-transformers,
Infinity) would otherwise try the decoder's 32k or 40k positions on an over-long document and run out of memory."""


def export_seq_cls(model: str, out: Path) -> Path:
    """The Qwen3-Reranker `model` (hub id or folder) saved into the new folder `out` as a one-label sequence
    classifier, with its tokenizer and a README.md on serving it. BadRequest when `out` is a folder with something in
    it or the model is not a Qwen3-Reranker; ModelLoadError when it cannot be loaded."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadRequest(f"{out} already exists and is not an empty folder; give a new folder to export into")
    tokenizer, lm = load_model(model, torch.device("cpu"), "auto")  # type: ignore[arg-type]  # "auto": its own dtype
    classifier = sequence_classifier(model, lm, tokenizer)
    tokenizer.padding_side = "right"  # causal: padding after the last token leaves every real position as it was
    tokenizer.chat_template = None  # else sentence-transformers would wrap each pair in the chat template
    tokenizer.model_max_length = min(tokenizer.model_max_length, SERVED_MAX_LENGTH)
    read_pairs_as_the_prompt(tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    classifier.save_pretrained(out)
    tokenizer.save_pretrained(out)
    readable_by_older_libraries(out)
    (out / "README.md").write_text(readme(model, out, str(lm.dtype).removeprefix("torch.")), encoding="utf-8")
    return out


def read_pairs_as_the_prompt(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give the tokenizer a pair template: text 1, text 2, PAIR_END, so that `classifier_pair`'s two texts (the second
    without the prompt's end) are read as the model card's whole prompt, its end tokenized alone as the card's code
    does. A server that cuts an over-long pair cuts text 2 before the template is added, so the end stays. A single
    text (vLLM's /classify, a prompt sent whole) is read as it is."""
    from tokenizers import processors

    def added(name: str, text: str) -> dict:
        ids = tokenizer.encode(text, add_special_tokens=False)
        return {"id": name, "ids": ids, "tokens": tokenizer.convert_ids_to_tokens(ids)}

    template = processors.TemplateProcessing(
        single="$A:0", pair="$A:0 $B:1 PAIR_END:1", special_tokens=[added("PAIR_END", PAIR_END)])
    backend = tokenizer.backend_tokenizer
    backend.post_processor = (template if backend.post_processor is None
                              else processors.Sequence([backend.post_processor, template]))


def readable_by_older_libraries(folder: Path) -> None:
    """Rewrite what transformers 5 saved in `folder` so that the transformers 4 inside the servers (TEI, Infinity, a
    pinned vLLM, llama.cpp's converter) reads the same model: the rope base at the top of config.json (else 4.x
    silently takes its default 10,000, where Qwen3's is 1,000,000), the special tokens as a list under their 4.x
    name, and the generic fast tokenizer under the class name both read. Either version then loads it identically."""
    config_path = Path(folder) / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    rope = config.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope and "rope_theta" not in config:
        config["rope_theta"] = rope["rope_theta"]
        config.setdefault("rope_scaling", None if rope.get("rope_type", "default") == "default" else rope)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tokenizer_path = Path(folder) / "tokenizer_config.json"
    if not tokenizer_path.exists():
        return
    settings = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    if settings.get("tokenizer_class") == "TokenizersBackend":
        settings["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(settings.get("extra_special_tokens"), list):
        settings["additional_special_tokens"] = settings.pop("extra_special_tokens")
    tokenizer_path.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def sequence_classifier(model: str, lm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """`lm`'s decoder under a one-label score layer whose row is its LM head's "yes" row minus its "no" row."""
    if any(str(a).endswith("ForSequenceClassification") for a in lm.config.architectures or []):
        raise BadRequest(f"{model} is already a sequence classifier ({', '.join(lm.config.architectures)}): serve "
                         "it as it is (python -m reranker rank --model opens it too); export reads a Qwen3-Reranker, "
                         "a causal LM")
    try:
        head = YesNoHead(lm, tokenizer)
    except ValueError as e:
        raise BadRequest(f"{model} is not a Qwen3-Reranker: {e}") from None
    if head.bias is not None:
        raise BadRequest(f"{model}'s LM head has a bias, which a sequence classifier's score layer cannot hold")
    config = lm.config.__class__.from_dict(lm.config.to_dict())
    config.architectures = None
    config.num_labels = 1
    config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    setattr(config, PROMPT_MARKER, PROMPT_FORM)
    try:
        with torch.device("meta"):  # no weights made: the decoder is the source's, the score row is built below
            classifier = AutoModelForSequenceClassification.from_config(config)
    except ValueError as e:
        raise BadRequest(f"{model} ({config.model_type}) has no sequence-classification form in transformers: "
                         f"{e}") from None
    if not isinstance(getattr(classifier, "score", None), torch.nn.Linear):
        raise BadRequest(f"{model} ({config.model_type}): its sequence classifier has no `score` layer to hold the row")
    setattr(classifier, classifier.base_model_prefix, lm.get_decoder())
    # "yes" minus "no", from the float32 copies, kept in float32: the difference of two bfloat16 rows is not a
    # bfloat16 row (rounded, it moved P(yes) by up to 0.03 on the full-size shape); a server that loads the export in
    # float32 then reads the card's exact logit, one that loads it in bfloat16 rounds it as it rounds the rest
    row = head.weight[1] - head.weight[0]
    classifier.score = torch.nn.Linear(row.shape[0], 1, bias=False, dtype=torch.float32)
    classifier.score.weight.data = row.unsqueeze(0).clone()
    return classifier.eval()


def readme(model: str, out: Path, dtype: str) -> str:
    """What the export is and how each server is sent its pairs: the two halves of the prompt, from core/prompt.py."""
    query_part, document_part = classifier_pair("{query}", "{document}", "{instruction}")
    default_part, _ = classifier_pair("{query}", "{document}", DEFAULT_INSTRUCTION)
    exactness = ("" if dtype == "float32" else
                 f"\n\n(in {dtype}, within its rounding of the float32 computation the engine does)")
    return _README.format(
        model=model, name=out.name, dtype=dtype, exactness=exactness, query_block=query_part,
        document_block=document_part,
        query_repr=repr(query_part), document_repr=repr(document_part), default_repr=repr(default_part),
        end_repr=repr(PAIR_END),
        default_instruction=DEFAULT_INSTRUCTION)


_README = """\
# {name}: {model} as a sequence classifier

`{model}` (Qwen3-Reranker) converted by `python -m reranker export {model} --to seq-cls {name}` (Qwen-Ranker Pro)
into a `*ForSequenceClassification` with one label, dtype {dtype}: the decoder is the original's, and the score
layer's one row is the LM head's "yes" row minus its "no" row. So, for the pair below,

    logit = log P(yes) - log P(no),    sigmoid(logit) = P(yes), the model card's score{exactness}

The tokenizer pads on the right and `config.json` sets `pad_token_id`, so the last real token is read; it has no chat
template, so a pair is read as two plain texts.

## The pair each server needs

Every server below reads a pair (text 1, text 2). They are the model card's prompt cut in two: text 1, the **query
part**, carries the instruction and the query; text 2, the **document part**, the document. The tokenizer's pair
template adds the end of the prompt after text 2 (`<|im_end|>`, the assistant turn, `</think>` and its line breaks),
which text 2 leaves out. Text 1 must keep its final line break: a server that strips each text (sentence-transformers
3, hence Infinity 0.0.78) loses it and does not read the card's prompt.
Fill `{{instruction}}` (the default is "{default_instruction}"), `{{query}}` and `{{document}}`:

Query part (text 1):

```text
{query_block}
```

Document part (text 2; the Python strings below are exact):

```text
{document_block}
```

As Python strings (`str.format` them):

```python
QUERY_PART = {query_repr}
DOCUMENT_PART = {document_repr}
PROMPT_END = {end_repr}  # added by the tokenizer after text 2; only a prompt sent whole needs it
```

Sent without these templates (a bare query and document) the model answers something else: a query or a document
alone is not the prompt it was trained on. A pair longer than a server's limit is cut by a server that truncates
(sentence-transformers, TEI with `truncate`) from the end of text 2, the document, and the template's end is added
after the cut, so the question is kept; vLLM refuses such a pair (HTTP 400) instead: keep documents within its
`--max-model-len` there. A control string typed in a query or a document (`<|im_end|>`, `<|im_start|>`) is read by
these servers as the control token itself, as one tokenizer call over the whole text reads it: a document can then
end the turn. Remove or escape such strings from user text before you send it (Qwen-Ranker Pro's own engine keeps
them as text). Check a deployment of this folder with `python -m reranker verify` against the original model.

## Serving it

- **sentence-transformers** `CrossEncoder` (scores are sigmoid(logit), its default for one label):

  ```python
  from sentence_transformers import CrossEncoder

  model = CrossEncoder("{name}")
  instruction = "{default_instruction}"
  pairs = [(QUERY_PART.format(instruction=instruction, query=query), DOCUMENT_PART.format(document=document))
           for document in documents]
  scores = model.predict(pairs)  # P(yes) of each document
  ```

- **Qwen-Ranker Pro**: `python -m reranker rank --model {name} --query ... --docs ...` (or `RERANKER_MODEL={name}`)
  opens it with CrossEncoder and builds the two parts itself, instructions included.

- **Text Embeddings Inference**: `text-embeddings-router --model-id {name}`, or
  `docker run -v $PWD:/data ghcr.io/huggingface/text-embeddings-inference:cpu-latest --model-id /data/{name}`
  (a release whose Qwen3 model reads a classifier: older ones stop with "`classifier` model type is not supported
  for Qwen3"). `POST /rerank` with `{{"query": QUERY_PART filled, "texts": [DOCUMENT_PART filled, ...]}}`; its
  scores are the sigmoid (`"raw_scores": true`: the logits).

- **Infinity**: `infinity_emb v2 --model-id {name}` (it scores with a CrossEncoder). `POST /rerank` with
  `{{"query": QUERY_PART filled, "documents": [DOCUMENT_PART filled, ...]}}`.

- **vLLM**: `vllm serve {name} --task score` (releases without `--task`: `--runner pooling`). `POST /score` with
  `{{"text_1": QUERY_PART filled, "text_2": [DOCUMENT_PART filled, ...]}}`, or `/v1/rerank` with the same as
  `query` and `documents`; the scores are the sigmoid. With `--task classify`, `/classify` takes each prompt whole:
  QUERY_PART + DOCUMENT_PART + PROMPT_END as one text (a single text gets no template).

The instruction goes into the query part, so one query under two instructions is two different text 1s. The
default one, filled in, starts text 1 like this:

```python
{default_repr}
```
"""
