from __future__ import annotations

import itertools

import pytest

from index.chunking import Chunker, ChunkingConfig, whitespace_token_count
from index.documents import Document
from index.sentences import split_sentences


def test_chunks_round_trip_over_builtin_corpus(demo_documents: list[Document]) -> None:
    chunker = Chunker(ChunkingConfig(max_tokens=60, overlap_sentences=1), whitespace_token_count)
    by_id = {d.id: d for d in demo_documents}
    n = 0
    for chunk in chunker.chunk_all(demo_documents):
        assert by_id[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        n += 1
    assert n > len(demo_documents)


def test_every_sentence_is_covered_and_chunks_respect_budget(demo_documents: list[Document]) -> None:
    config = ChunkingConfig(max_tokens=50, overlap_sentences=0)
    chunker = Chunker(config, whitespace_token_count)
    for doc in demo_documents:
        chunks = chunker.chunk(doc)
        covered = set()
        for c in chunks:
            covered.update(range(c.start, c.end))
            # a chunk exceeds the budget only when it is a single over-long sentence
            if whitespace_token_count(c.text) > config.max_tokens:
                assert len(split_sentences(c.text)) == 1
        text_chars = {i for i, ch in enumerate(doc.text) if not ch.isspace()}
        assert text_chars <= covered  # pieces of a cut sentence leave out only the space between them


def test_overlap_repeats_boundary_sentence() -> None:
    doc = Document("d", " ".join(f"Sentence number {i} has five words." for i in range(10)))
    chunks = Chunker(ChunkingConfig(max_tokens=12, overlap_sentences=1), whitespace_token_count).chunk(doc)
    assert len(chunks) > 2
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # the last sentence of a is the first of b
        assert doc.text[b.start : a.end].endswith(".")


def test_overlong_sentence_is_cut_at_word_boundaries() -> None:
    words = [f"w{i}" for i in range(100)]
    doc = Document("long", " ".join(words) + ".")
    chunks = Chunker(ChunkingConfig(max_tokens=10, overlap_sentences=0), whitespace_token_count).chunk(doc)
    assert len(chunks) == 10
    assert " ".join(c.text for c in chunks) == doc.text
    assert all(whitespace_token_count(c.text) <= 10 for c in chunks)


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        ChunkingConfig(max_tokens=2)
    with pytest.raises(ValueError, match="overlap"):
        ChunkingConfig(overlap_sentences=-1)


@pytest.mark.model
def test_chunks_fit_embedder_window(demo_documents: list[Document], embedder) -> None:
    chunker = Chunker(ChunkingConfig(max_tokens=128, overlap_sentences=1), embedder.count_tokens)
    for chunk in chunker.chunk_all(demo_documents):
        assert embedder.count_tokens(chunk.text) <= embedder.max_seq_length - 2
