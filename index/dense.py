"""FAISS inner-product index over normalised chunk vectors (flat exact search, or HNSW for large corpora)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import faiss
import numpy as np

from index.errors import IndexCorruptError


class DenseIndexType(StrEnum):
    FLAT = "flat"
    HNSW = "hnsw"


def build_dense_index(vectors: np.ndarray, kind: DenseIndexType, hnsw_m: int = 32) -> faiss.Index:
    dim = vectors.shape[1]
    if kind is DenseIndexType.HNSW:
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 200
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def save_dense_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_dense_index(path: Path, expected_count: int, expected_dim: int) -> faiss.Index:
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as err:
        raise IndexCorruptError(
            f"{path}: FAISS cannot read it ({str(err).splitlines()[0]}); rebuild with `qa index`"
        ) from err
    if index.ntotal != expected_count or index.d != expected_dim:
        raise IndexCorruptError(
            f"{path}: holds {index.ntotal} vectors of dimension {index.d}, the manifest says "
            f"{expected_count} x {expected_dim}; rebuild with `qa index`"
        )
    return index


def search_dense(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, index.ntotal)
    if k <= 0:
        n = len(queries)
        return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
