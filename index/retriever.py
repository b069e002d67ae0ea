"""Dense, lexical and hybrid retrieval of chunks.

Hybrid fuses the two candidate lists by a convex combination of z-normalised scores (default) or by weighted
reciprocal-rank fusion. Cosine and BM25 live on unrelated scales, so each side's scores are standardised over its
own candidates first; unlike RRF, the fused order then keeps how *far* ahead a candidate is, which Bruch et al.
(2023, "An analysis of fusion functions for hybrid retrieval") found to beat RRF once the weight is tuned on a
little dev data. On seed_dev, COVID-QA dev and test and PubMedQA it ranks the right document first more often
than the tuned RRF (docs/evaluation.md, "Fusion weights and thresholds").

BM25 sees the question with the abbreviations the corpus defines expanded ("overall survival" gains "OS"): the
retriever holds the index's abbreviation map and expands every query itself, so every caller (the service, the
harness, the benchmarks) ranks with the same query.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from index.abbreviations import abbreviation_map, expand_query
from index.dense import search_dense
from index.embedder import Embedder
from index.passages import RetrievedPassage
from index.store import CorpusIndex


class RetrievalMode(StrEnum):
    DENSE = "dense"
    BM25 = "bm25"
    HYBRID = "hybrid"


class FusionMethod(StrEnum):
    ZSCORE = "zscore"
    RRF = "rrf"


# The product's fusion, chosen on seed_dev, COVID-QA dev and test and PubMedQA together (docs/evaluation.md,
# "Fusion weights and thresholds"); the settings take their defaults from here.
DEFAULT_FUSION_METHOD = FusionMethod.ZSCORE
DEFAULT_DENSE_WEIGHT = 0.3
DEFAULT_LEXICAL_WEIGHT = 0.7
DEFAULT_RRF_K = 10.0  # with method rrf: tuned on two dev sets (weights 1.0/1.0 then)
DEFAULT_FUSION_CANDIDATES = 50  # each side searched this deep before fusing


@dataclass(frozen=True, slots=True)
class FusionConfig:
    rrf_k: float = DEFAULT_RRF_K
    dense_weight: float = DEFAULT_DENSE_WEIGHT
    lexical_weight: float = DEFAULT_LEXICAL_WEIGHT
    candidates: int = DEFAULT_FUSION_CANDIDATES
    method: FusionMethod = DEFAULT_FUSION_METHOD


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], k: float
) -> list[tuple[int, float]]:
    """Fuse ranked id lists; ties break on the smaller id so the order is deterministic."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, idx in enumerate(ranking, start=1):
            scores[idx] = scores.get(idx, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def zscore_fusion(lists: Sequence[Sequence[tuple[int, float]]], weights: Sequence[float]) -> list[tuple[int, float]]:
    """Weighted sum of per-list z-scores; an id missing from a list gets that list's lowest z-score (it ranked
    below every candidate the list returned). A list of one score, or of equal scores, adds nothing but presence.
    Ties break on the smaller id."""
    ids = {i for scored in lists for i, _ in scored}
    fused = dict.fromkeys(ids, 0.0)
    for scored, weight in zip(lists, weights, strict=True):
        if not scored or weight == 0:
            continue
        values = np.array([v for _, v in scored], dtype=np.float64)
        sd = float(values.std())
        z = (values - values.mean()) / sd if sd > 1e-12 else np.zeros_like(values)
        floor = float(z.min())
        got = {i: float(zi) for (i, _), zi in zip(scored, z, strict=True)}
        for i in ids:
            fused[i] += weight * got.get(i, floor)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


class Retriever:
    """Ranks chunks for questions; `run` for one, `run_batch` for several with one encoder call and one FAISS
    search, giving each question the passages `run` would."""

    def __init__(
        self,
        index: CorpusIndex,
        embedder: Embedder,
        fusion: FusionConfig = FusionConfig(),
        expand_abbreviations: bool = True,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.fusion = fusion
        # Short form -> long forms, as the corpus defines them; built once per index (about 1 ms an abstract).
        self.abbreviations: dict[str, set[str]] = (
            abbreviation_map(d.text for d in index.documents.values()) if expand_abbreviations else {}
        )

    def lexical_query(self, query: str) -> str:
        """The text BM25 searches for `query`: the query with the corpus's abbreviations expanded."""
        return expand_query(query, self.abbreviations) if self.abbreviations else query

    def _depth(self, mode: RetrievalMode, top_k: int) -> int:
        """How deep each side is searched: fusion needs candidates beyond the top k."""
        return top_k if mode is not RetrievalMode.HYBRID else max(top_k, self.fusion.candidates)

    def run(
        self,
        query: str,
        top_k: int = 5,
        mode: RetrievalMode = RetrievalMode.HYBRID,
        query_vector: np.ndarray | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[RetrievedPassage]:
        """Top `top_k` chunks for `query`; `query_vector` skips re-encoding when the caller has it. `timings`,
        when given, receives `embed` and `search` (FAISS + BM25 + fusion) in ms."""
        vectors = None if query_vector is None else np.asarray(query_vector).reshape(1, -1)
        return self.run_batch([query], top_k, mode, vectors, timings)[0]

    def run_batch(
        self,
        queries: Sequence[str],
        top_k: int | Sequence[int] = 5,
        mode: RetrievalMode | str | Sequence[RetrievalMode | str] = RetrievalMode.HYBRID,
        query_vectors: np.ndarray | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[list[RetrievedPassage]]:
        """`run` for each query (`top_k` and `mode` may differ per query), with the dense side batched: the
        questions are encoded in one call (`Embedder.encode_queries`, which keeps each vector as `run` computes
        it) and searched in one FAISS call per search depth, so results match `run`'s. `timings` receives the
        batch's `embed` and `search` ms."""
        n = len(queries)
        ks = [top_k] * n if isinstance(top_k, int) else list(top_k)
        modes = [RetrievalMode(mode)] * n if isinstance(mode, str) else [RetrievalMode(m) for m in mode]
        if not len(ks) == len(modes) == n:
            raise ValueError("run_batch: top_k and mode need one entry per query")
        active = [i for i in range(n) if ks[i] > 0 and self.index.chunks]
        t0 = time.perf_counter()
        dense_rows = [i for i in active if modes[i] is not RetrievalMode.BM25]
        vectors: np.ndarray | None = None
        if dense_rows:
            if query_vectors is not None:
                vectors = np.asarray(query_vectors, dtype=np.float32)[dense_rows]
            else:
                vectors = self.embedder.encode_queries([queries[i] for i in dense_rows])
        t1 = time.perf_counter()
        dense: dict[int, list[tuple[int, float]]] = {}
        if vectors is not None:
            # One search per depth: a deeper search may order ties (or walk an HNSW graph) differently.
            by_depth: dict[int, list[int]] = {}
            for row, i in enumerate(dense_rows):
                by_depth.setdefault(self._depth(modes[i], ks[i]), []).append(row)
            for depth, rows in by_depth.items():
                scores, ids = search_dense(self.index.dense, vectors[rows], depth)
                for r, row in enumerate(rows):
                    dense[dense_rows[row]] = [
                        (int(c), float(s)) for c, s in zip(ids[r], scores[r], strict=True) if c >= 0
                    ]
        out: list[list[RetrievedPassage]] = [[] for _ in range(n)]
        for i in active:
            lex: list[tuple[int, float]] = []
            if modes[i] is not RetrievalMode.DENSE:
                lex = self.index.lexical.search(self.lexical_query(queries[i]), self._depth(modes[i], ks[i]))
            out[i] = self._fuse(dense.get(i, []), lex, modes[i], ks[i])
        t2 = time.perf_counter()
        if timings is not None:
            timings["embed"] = (t1 - t0) * 1000
            timings["search"] = (t2 - t1) * 1000
        return out

    def _fuse(
        self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]], mode: RetrievalMode, top_k: int
    ) -> list[RetrievedPassage]:
        dense_by = dict(dense)
        lex_by = dict(lexical)
        if mode is RetrievalMode.DENSE:
            ranked = dense
        elif mode is RetrievalMode.BM25:
            ranked = lexical
        elif self.fusion.method is FusionMethod.ZSCORE:
            ranked = zscore_fusion([dense, lexical], [self.fusion.dense_weight, self.fusion.lexical_weight])
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
