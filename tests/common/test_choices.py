from __future__ import annotations

import pytest

from common.choices import parse_choice
from index.embedder import Embedder
from qa.readers.base import ReaderKind
from qa.readers.transformers_reader import ReaderBackend


def test_parse_choice_lists_choices() -> None:
    assert parse_choice(ReaderKind, "heuristic", "reader") is ReaderKind.HEURISTIC
    with pytest.raises(ValueError, match="unknown reader 'x'; choose one of: heuristic, transformers"):
        parse_choice(ReaderKind, "x", "reader")


def test_every_named_option_is_parsed_by_the_one_parser() -> None:
    for make, what in (
        (lambda: Embedder(backend="tensorrt"), "embedding backend 'tensorrt'"),
        (lambda: ReaderBackend.parse("tensorrt"), "reader backend 'tensorrt'"),
    ):
        with pytest.raises(ValueError, match=f"unknown {what}; choose one of: "):
            make()
