"""FAISS inner-product indexes over normalised chunk vectors, and which kind to build for a corpus of a given size.

Every kind and setting here comes from `qa bench scale` (docs/performance.md, "Dense retrieval at scale"; JSON under
`var/bench/scale*.json`): 384-d vectors shaped like MiniLM chunk embeddings, one query at a time on one OpenMP
thread, recall@10 against exact search, on the project's 2-core machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.errors import IndexCorruptError


class DenseIndexType(StrEnum):
    """What `dense_index` may name. `auto` is resolved by vector count at build time (`resolve_dense_type`);
    a manifest always records the concrete kind that was built."""

    AUTO = "auto"
    FLAT = "flat"
    HNSW = "hnsw"
    HNSW_SQ8 = "hnsw-sq8"
    IVF_SQ8 = "ivf-sq8"

    @classmethod
    def _missing_(cls, value: object) -> DenseIndexType | None:
        """Accept `hnsw_sq8` or `HNSW-SQ8` too: `qa bench scale` spells its kinds with underscores."""
        if isinstance(value, str):
            wanted = value.strip().lower().replace("_", "-")
            return next((kind for kind in cls if kind.value == wanted), None)
        return None


# Exact search while one query stays at about 1 ms: flat p50 0.27-0.33 ms at 10k, 0.87-1.04 ms at 20k, 1.4 ms
# at 30k and 6.1-11.4 ms at 100k vectors (var/bench/scale.json, var/bench/scale-auto.json). Above it HNSW over
# 8-bit codes: the fastest kind at recall@10 >= 0.95 at 100k (0.13 ms at 0.963 with efSearch 32; HNSW 0.34 ms,
# IVF-SQ8 0.20-0.25 ms) and at 1M (1.20 ms at 0.980 in 626 MiB, where flat takes 88 ms, IVF-SQ8 8.3 ms and HNSW
# 1.7 GiB), with 2.8x less memory than HNSW and a 3-4x faster build. At 20k-30k IVF-SQ8 is faster by tens of
# microseconds, nothing next to a 25 ms request. Plain HNSW wins only above recall 0.99: `auto` never picks it.
FLAT_MAX_VECTORS = 20_000

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200  # HNSW with full vectors, as `qa index` built it before the 8-bit kinds
HNSW_SQ8_EF_CONSTRUCTION = 100  # as measured: 21 s for 100k vectors, 557 s for 1M on the busy machine

# (vectors up to, efSearch): recall@10 of HNSW-SQ8 at 10k: 0.959 at efSearch 16, 0.984 at 32; at 100k: 0.963 at
# 32, 0.988 at 64 (0.20-0.22 ms); at 1M: 0.945 at 128, 0.980 at 256 (1.20 ms; 0.975 at 1.08 ms as built here,
# var/bench/scale-1m-auto.json). The thin 0.963 at 100k is not taken.
# Full-vector HNSW reached a higher recall than HNSW-SQ8 at every efSearch measured, so it uses the same table.
EF_SEARCH_BY_SIZE: tuple[tuple[int, int], ...] = ((100_000, 64), (1_000_000, 256))
# (vectors up to, nprobe) with `ivf_lists(n)` lists: 10k (256 lists): 0.984 at nprobe 8; 100k (512): 0.968 at 32;
# 1M (2,048): 0.952 at 256 (8.3 ms), 0.905 at 128, 0.979 at 512 (14 ms).
NPROBE_BY_SIZE: tuple[tuple[int, int], ...] = ((10_000, 8), (100_000, 32), (1_000_000, 256))
# Past the largest size measured a setting is doubled: recall falls as n grows at a fixed setting (unmeasured).
BEYOND_MEASURED = 2

SQ8_TRAIN_MAX = 100_000  # 8-bit ranges (per-dimension min and max) from a seeded sample of at most this many
IVF_TRAIN_PER_LIST = 40  # k-means points per list (FAISS asks for 39); more only costs training time
TRAIN_SEED = 0


def by_size(table: tuple[tuple[int, int], ...], n: int) -> int:
    """The setting measured at the smallest size >= n (at least what n needs), doubled past the largest."""
    for size, value in table:
        if n <= size:
            return value
    return table[-1][1] * BEYOND_MEASURED


def ivf_lists(n: int) -> int:
    """About 2 * sqrt(n) inverted lists (a power of two): 256 at 10k, 512 at 100k, 2048 at 1M, as measured;
    never fewer than 39 training points per list (one list for tiny corpora)."""
    nlist = 2 ** round(math.log2(max(16.0, 2 * math.sqrt(n))))
    return max(1, min(nlist, n // 39))


def resolve_dense_type(kind: DenseIndexType, n_vectors: int) -> DenseIndexType:
    """`auto` becomes the kind measured best for `n_vectors`; any other kind is itself."""
    if kind is not DenseIndexType.AUTO:
        return kind
    return DenseIndexType.FLAT if n_vectors <= FLAT_MAX_VECTORS else DenseIndexType.HNSW_SQ8


@dataclass(frozen=True, slots=True)
class DenseSpec:
    """A concrete kind with the settings chosen for its size: what gets built and what the manifest records."""

    type: DenseIndexType
    m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None
    nlist: int | None = None
    nprobe: int | None = None
    train_vectors: int | None = None

    def __post_init__(self) -> None:
        if self.type is DenseIndexType.AUTO:
            raise ValueError("a DenseSpec names a concrete kind; resolve `auto` with dense_spec(kind, n) first")

    @property
    def keeps_exact_vectors(self) -> bool:
        """Flat and HNSW store the vectors themselves; the 8-bit kinds keep only lossy codes, so an index of
        theirs also saves the vectors (`vectors.npy`) for updates to rebuild from."""
        return self.type in (DenseIndexType.FLAT, DenseIndexType.HNSW)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.value}
        for key, value in (
            ("M", self.m),
            ("efConstruction", self.ef_construction),
            ("efSearch", self.ef_search),
            ("nlist", self.nlist),
            ("nprobe", self.nprobe),
            ("train_vectors", self.train_vectors),
        ):
            if value is not None:
                out[key] = value
        return out


def dense_spec(kind: DenseIndexType, n_vectors: int) -> DenseSpec:
    """The kind (`auto` resolved) and its settings for an index of `n_vectors`."""
    kind = resolve_dense_type(kind, n_vectors)
    if kind is DenseIndexType.HNSW:
        return DenseSpec(kind, HNSW_M, HNSW_EF_CONSTRUCTION, by_size(EF_SEARCH_BY_SIZE, n_vectors))
    if kind is DenseIndexType.HNSW_SQ8:
        return DenseSpec(
            kind,
            HNSW_M,
            HNSW_SQ8_EF_CONSTRUCTION,
            by_size(EF_SEARCH_BY_SIZE, n_vectors),
            train_vectors=min(n_vectors, SQ8_TRAIN_MAX),
        )
    if kind is DenseIndexType.IVF_SQ8:
        nlist = ivf_lists(n_vectors)
        return DenseSpec(
            kind,
            nlist=nlist,
            nprobe=min(nlist, by_size(NPROBE_BY_SIZE, n_vectors)),
            train_vectors=min(n_vectors, IVF_TRAIN_PER_LIST * nlist),
        )
    return DenseSpec(DenseIndexType.FLAT)


def new_dense_index(spec: DenseSpec, dim: int) -> faiss.Index:
    """An empty (and, for the 8-bit kinds, untrained) index of `spec`, search settings applied."""
    ip = faiss.METRIC_INNER_PRODUCT
    if spec.type is DenseIndexType.HNSW:
        index = faiss.IndexHNSWFlat(dim, spec.m, ip)
    elif spec.type is DenseIndexType.HNSW_SQ8:
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, spec.m, ip)
    elif spec.type is DenseIndexType.IVF_SQ8:
        index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim), dim, spec.nlist, faiss.ScalarQuantizer.QT_8bit, ip
        )
        index.cp.min_points_per_centroid = 1  # ivf_lists already keeps 39 per list; tiny corpora get one list
    else:
        return faiss.IndexFlatIP(dim)
    if spec.ef_construction is not None:
        index.hnsw.efConstruction = spec.ef_construction
    apply_search_settings(index, spec.to_json())
    return index


def train_dense_index(index: faiss.Index, spec: DenseSpec, vectors: np.ndarray) -> None:
    """Train the 8-bit kinds on a seeded sample of the vectors themselves (all of them when few): the same
    vectors always give the same index."""
    if index.is_trained or not len(vectors):
        return
    n = len(vectors)
    take = min(n, spec.train_vectors or n)
    rows = np.sort(np.random.default_rng(TRAIN_SEED).choice(n, take, replace=False)) if take < n else slice(None)
    index.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))


def build_dense_index(vectors: np.ndarray, kind: DenseIndexType | DenseSpec) -> faiss.Index:
    """The index of `kind` (`auto` resolved by `len(vectors)`) over `vectors`, trained and filled."""
    spec = kind if isinstance(kind, DenseSpec) else dense_spec(kind, len(vectors))
    index = new_dense_index(spec, vectors.shape[1])
    if len(vectors):
        train_dense_index(index, spec, vectors)
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def apply_search_settings(index: faiss.Index, recorded: Mapping[str, Any]) -> None:
    """Set efSearch / nprobe as the manifest records them (FAISS saves them too; the manifest is what a reader
    sees, so it is what is applied)."""
    if "efSearch" in recorded and isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = int(recorded["efSearch"])
    if "nprobe" in recorded and isinstance(index, faiss.IndexIVF):
        index.nprobe = int(recorded["nprobe"])


_FAISS_CLASS: dict[DenseIndexType, type] = {
    DenseIndexType.FLAT: faiss.IndexFlat,
    DenseIndexType.HNSW: faiss.IndexHNSWFlat,
    DenseIndexType.HNSW_SQ8: faiss.IndexHNSWSQ,
    DenseIndexType.IVF_SQ8: faiss.IndexIVFScalarQuantizer,
}


def save_dense_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_dense_index(
    path: Path, expected_count: int, expected_dim: int, recorded: Mapping[str, Any] | None = None
) -> faiss.Index:
    """Read `path`, checking its size and, given the manifest's `dense` entry, that it is the kind recorded."""
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
    if recorded is not None:
        try:
            kind = DenseIndexType(recorded.get("type"))
            expected = _FAISS_CLASS[kind]
        except (ValueError, KeyError):
            raise IndexCorruptError(
                f"{path}: the manifest records dense type {recorded.get('type')!r}, which this version does not "
                f"know; rebuild with `qa index`"
            ) from None
        if not isinstance(index, expected) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexCorruptError(
                f"{path}: holds a FAISS {type(index).__name__}, the manifest says {kind.value!r} over inner "
                "product; rebuild with `qa index`"
            )
        apply_search_settings(index, recorded)
    return index


def search_dense(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, index.ntotal)
    if k <= 0:
        n = len(queries)
        return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
