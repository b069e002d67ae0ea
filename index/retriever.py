"""Dense, lexical and hybrid retrieval of chunks.

Hybrid is weighted reciprocal-rank fusion: it needs no score calibration between cosine and BM25, which have
unrelated scales, and it is robust when one side finds nothing (a query of unknown words, say).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from index.dense import search_dense
from index.documents import Chunk
from index.embedder import Embedder
from index.store import CorpusIndex


class RetrievalMode(StrEnum):
    DENSE = "dense"
    BM25 = "bm25"
    HYBRID = "hybrid"


@dataclass(frozen=True, slots=True)
class RetrievedPassage:
    chunk: Chunk
    score: float
    rank: int
    dense_score: float | None = None
    lexical_score: float | None = None


@dataclass(frozen=True, slots=True)
class FusionConfig:
    rrf_k: float = 60.0
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    candidates: int = 50


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], k: float
) -> list[tuple[int, float]]:
    """Fuse ranked id lists; ties break on the smaller id so the order is deterministic."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, idx in enumerate(ranking, start=1):
            scores[idx] = scores.get(idx, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class Retriever:
    def __init__(self, index: CorpusIndex, embedder: Embedder, fusion: FusionConfig = FusionConfig()) -> None:
        self.index = index
        self.embedder = embedder
        self.fusion = fusion

    def _dense(self, query_vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        scores, ids = search_dense(self.index.dense, query_vec.reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def run(
        self,
        query: str,
        top_k: int = 5,
        mode: RetrievalMode = RetrievalMode.HYBRID,
        query_vector: np.ndarray | None = None,
        lexical_query: str | None = None,
    ) -> list[RetrievedPassage]:
        """Top `top_k` chunks for `query`; `query_vector` skips re-encoding when the caller has it, and
        `lexical_query` (e.g. the query with abbreviations expanded) replaces the text BM25 sees."""
        mode = RetrievalMode(mode)
        if top_k <= 0 or not self.index.chunks:
            return []
        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if mode is not RetrievalMode.BM25:
            vec = query_vector if query_vector is not None else self.embedder.encode([query])[0]
            dense = self._dense(vec, top_k if mode is RetrievalMode.DENSE else max(top_k, self.fusion.candidates))
        if mode is not RetrievalMode.DENSE:
            lexical = self.index.lexical.search(
                query, top_k if mode is RetrievalMode.BM25 else max(top_k, self.fusion.candidates)
            )
        dense_by = dict(dense)
        lex_by = dict(lexical)
        if mode is RetrievalMode.DENSE:
            ranked = dense
        elif mode is RetrievalMode.BM25:
            ranked = lexical
        else:
            ranked = reciprocal_rank_fusion(
                [[i for i, _ in dense], [i for i, _ in lexical]],
                [self.fusion.dense_weight, self.fusion.lexical_weight],
                self.fusion.rrf_k,
            )
        return [
            RetrievedPassage(
                chunk=self.index.chunks[i],
                score=score,
                rank=r,
                dense_score=dense_by.get(i),
                lexical_score=lex_by.get(i),
            )
            for r, (i, score) in enumerate(ranked[:top_k], start=1)
        ]
