"""A retrieved passage: the chunk with its fused score and rank (and each side's score when hybrid).

Its own small module so that the readers and the trainer, which only read passages, import no search code
(FAISS, BM25): the trainer runs on machines that have torch and transformers alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from index.documents import Chunk


@dataclass(frozen=True, slots=True)
class RetrievedPassage:
    chunk: Chunk
    score: float
    rank: int
    dense_score: float | None = None
    lexical_score: float | None = None
