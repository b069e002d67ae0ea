"""Sentence-aware chunking sized in the embedder's own tokens.

Chunks never cut a sentence unless that sentence alone exceeds the budget, so a retrieved passage reads as
prose and an answer span inside it is never split across two chunks by accident. The overlap (in whole
sentences) keeps a fact that straddles a boundary retrievable from either side.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from index.documents import Chunk, Document
from index.sentences import SPLITTER_VERSION, split_sentences

TokenCounter = Callable[[str], int]
_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    max_tokens: int = 128
    overlap_sentences: int = 1

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValueError(f"chunk max_tokens must be >= 8, got {self.max_tokens}")
        if self.overlap_sentences < 0:
            raise ValueError(f"chunk overlap_sentences must be >= 0, got {self.overlap_sentences}")

    def to_json(self) -> dict[str, int | str]:
        return {
            "max_tokens": self.max_tokens,
            "overlap_sentences": self.overlap_sentences,
            "splitter_version": SPLITTER_VERSION,
        }


def whitespace_token_count(text: str) -> int:
    """A tokenizer-free counter, for tests and for callers without a model."""
    return len(_WORD.findall(text))


class Chunker:
    def __init__(self, config: ChunkingConfig, count_tokens: TokenCounter) -> None:
        self.config = config
        self.count_tokens = count_tokens

    def _units(self, text: str) -> list[tuple[int, int, int]]:
        """Sentences as (start, end, tokens); an over-long sentence is cut at word boundaries."""
        units: list[tuple[int, int, int]] = []
        for s, e in split_sentences(text):
            n = self.count_tokens(text[s:e])
            if n <= self.config.max_tokens:
                units.append((s, e, n))
                continue
            piece_start, piece_end, piece_tokens = s, s, 0
            for w in _WORD.finditer(text, s, e):
                wt = max(1, self.count_tokens(w.group()))
                if piece_tokens and piece_tokens + wt > self.config.max_tokens:
                    units.append((piece_start, piece_end, piece_tokens))
                    piece_start, piece_tokens = w.start(), 0
                piece_end = w.end()
                piece_tokens += wt
            if piece_tokens:
                units.append((piece_start, piece_end, piece_tokens))
        return units

    def chunk(self, doc: Document) -> list[Chunk]:
        units = self._units(doc.text)
        chunks: list[Chunk] = []
        i = 0
        while i < len(units):
            j, total = i, 0
            while j < len(units) and (j == i or total + units[j][2] <= self.config.max_tokens):
                total += units[j][2]
                j += 1
            chunks.append(Chunk.from_document(doc, units[i][0], units[j - 1][1], len(chunks)))
            if j >= len(units):
                break
            i = max(i + 1, j - self.config.overlap_sentences)
        return chunks

    def chunk_all(self, docs: Iterable[Document]) -> Iterator[Chunk]:
        for doc in docs:
            yield from self.chunk(doc)
