"""A model's memory, told from its config.json before it loads."""

import json
from pathlib import Path

import pytest

from reranker.engine.memory import Fit, available_bytes, estimate, fit_of, parameter_count, read_config
from reranker.workbench.charts import scatter_figure

SHARED_CONFIG = Path(__file__).resolve().parents[2] / "shared" / "models" / "qwen3-reranker-0.6b" / "config.json"
QWEN3_0_6B = {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
              "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151669, "tie_word_embeddings": True}


def test_the_0_6b_counts_as_its_595_8_million_parameters():
    config = json.loads(SHARED_CONFIG.read_text()) if SHARED_CONFIG.exists() else QWEN3_0_6B
    assert parameter_count(config) == 595_776_512
    in_float32 = estimate(config, 4)
    assert in_float32.weights_bytes == 4 * 595_776_512 and in_float32.total_bytes > in_float32.weights_bytes
    assert "596M parameters, 2.4 GB of weights" in in_float32.text()
    untied = parameter_count({**QWEN3_0_6B, "tie_word_embeddings": False})
    assert untied - parameter_count(QWEN3_0_6B) == 151669 * 1024  # its own LM head


def test_the_config_comes_from_the_folder_and_free_memory_is_known(tiny_model_dir, tmp_path):
    assert read_config(str(tiny_model_dir))["hidden_size"] == 64
    assert read_config(str(tmp_path / "nothing-here")) is None
    assert available_bytes() > 0


def test_a_model_that_would_not_fit_is_refused_before_it_loads(tiny_model_dir, tmp_path):
    tiny = fit_of(str(tiny_model_dir), 4)
    assert tiny.fits and tiny.needed is not None and tiny.text().startswith(f"{tiny_model_dir}: about ")
    unknown = fit_of(str(tmp_path / "nothing-here"), 4)
    assert unknown.fits and "not known before it downloads" in unknown.text()
    huge = Fit("Qwen/Qwen3-Reranker-8B", estimate(QWEN3_0_6B, 4), free=10**9)
    assert not huge.fits
    assert huge.refusal("here") == ("Qwen/Qwen3-Reranker-8B needs about 3.0 GB (596M parameters, 2.4 GB of weights), "
                                    "but 1.0 GB is free here, so it is not loaded")


def test_the_scatter_plots_each_document_once_with_the_diagonal():
    fig = scatter_figure("A", [1.0, -2.0], "B", [0.5, -1.0], ["<b>x</b>", "y"])
    assert list(fig.data[1].x) == [1.0, -2.0] and list(fig.data[1].y) == [0.5, -1.0]
    assert list(fig.data[0].x) == [-2.0, 1.0]  # the line where both runs agree
    assert "<b>" not in fig.data[1].customdata[0]


@pytest.mark.parametrize("family", ["XLMRoberta", "Bert"])
def test_an_encoder_cross_encoder_is_counted_as_its_own_kind(family: str):
    """bge-reranker-v2-m3 (XLM-RoBERTa) or a MiniLM (BERT) cross-encoder: the fit check counts an encoder's
    parameters, not a decoder's."""
    import transformers

    config = getattr(transformers, f"{family}Config")(vocab_size=1000, hidden_size=64, num_hidden_layers=3,
                                                      num_attention_heads=4, intermediate_size=256,
                                                      max_position_embeddings=130, num_labels=1)
    model = getattr(transformers, f"{family}ForSequenceClassification")(config)
    assert parameter_count(config.to_dict()) == sum(p.numel() for p in model.parameters())
