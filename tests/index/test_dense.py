"""Dense index kinds: each builds, saves, loads and searches; the approximate ones keep recall@10 >= 0.95 against
exact search; `auto` picks by vector count at the measured thresholds (a pure function: no huge index is built)."""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np
import pytest

from index.dense import (
    EF_SEARCH_BY_SIZE,
    FLAT_MAX_VECTORS,
    NPROBE_BY_SIZE,
    DenseIndexType,
    DenseSpec,
    build_dense_index,
    by_size,
    dense_spec,
    ivf_lists,
    load_dense_index,
    resolve_dense_type,
    save_dense_index,
    search_dense,
)
from index.errors import IndexCorruptError

DIM = 384
CONCRETE = [k for k in DenseIndexType if k is not DenseIndexType.AUTO]
APPROXIMATE = [k for k in CONCRETE if k is not DenseIndexType.FLAT]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vectors shaped like chunk embeddings: a shared direction, topics of unequal size, documents of 4 chunks,
    and questions near one document (not uniform noise, on which every approximate index looks better)."""
    rng = np.random.default_rng(seed)
    noise = lambda m: rng.standard_normal((m, DIM)).astype(np.float32) / math.sqrt(DIM)  # noqa: E731
    common = _unit(rng.standard_normal((1, DIM)))
    topics = _unit(noise(50) + 0.5 * common)
    sizes = rng.lognormal(0.0, 1.0, len(topics))
    docs = _unit(topics[rng.choice(len(topics), n // 4, p=sizes / sizes.sum())] + 0.85 * noise(n // 4))
    vectors = _unit(docs[np.arange(n) % len(docs)] + 0.6 * noise(n))
    queries = _unit(docs[rng.integers(0, len(docs), n_queries)] + 1.15 * noise(n_queries))
    return vectors, queries


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors, queries = clustered(5000, 200)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    return vectors, queries, truth


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.tolist(), truth.tolist(), strict=True)]))


@pytest.mark.parametrize("kind", CONCRETE)
def test_each_kind_builds_saves_loads_and_searches(
    kind: DenseIndexType, data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    vectors, queries, truth = data
    spec = dense_spec(kind, len(vectors))
    index = build_dense_index(vectors, spec)
    assert index.ntotal == len(vectors)
    _, found = search_dense(index, queries, 10)
    recall = recall_at_10(found, truth)
    assert recall >= (1.0 if kind is DenseIndexType.FLAT else 0.95), (kind, recall)

    path = tmp_path / "dense.faiss"
    save_dense_index(index, path)
    loaded = load_dense_index(path, len(vectors), DIM, spec.to_json())
    assert type(loaded) is type(index)
    scores_again, found_again = search_dense(loaded, queries, 10)
    np.testing.assert_array_equal(found_again, found)
    assert scores_again.dtype == np.float32 and np.isfinite(scores_again).all()


@pytest.mark.parametrize("kind", APPROXIMATE)
def test_search_settings_come_from_the_manifest(kind: DenseIndexType, tmp_path: Path) -> None:
    vectors, _ = clustered(2000, 1)
    spec = dense_spec(kind, len(vectors))
    save_dense_index(build_dense_index(vectors, spec), tmp_path / "d.faiss")
    recorded = {**spec.to_json(), "efSearch": 7, "nprobe": 3}
    loaded = load_dense_index(tmp_path / "d.faiss", len(vectors), DIM, recorded)
    if kind is DenseIndexType.IVF_SQ8:
        assert loaded.nprobe == 3
    else:
        assert loaded.hnsw.efSearch == 7


def test_a_file_of_another_kind_than_recorded_is_refused_naming_it(tmp_path: Path) -> None:
    vectors, _ = clustered(400, 1)
    path = tmp_path / "dense.faiss"
    save_dense_index(build_dense_index(vectors, DenseIndexType.FLAT), path)
    with pytest.raises(
        IndexCorruptError, match=r"dense.faiss: holds a FAISS IndexFlatIP, the manifest says 'hnsw-sq8'"
    ):
        load_dense_index(path, len(vectors), DIM, {"type": "hnsw-sq8"})
    with pytest.raises(IndexCorruptError, match="dense type 'annoy'"):
        load_dense_index(path, len(vectors), DIM, {"type": "annoy"})


@pytest.mark.parametrize("kind", [DenseIndexType.HNSW_SQ8, DenseIndexType.IVF_SQ8])
def test_training_is_seeded_and_samples_large_sets(kind: DenseIndexType, monkeypatch: pytest.MonkeyPatch) -> None:
    vectors, _ = clustered(3000, 1)
    # Force a sample (at full size k-means samples 40 per list, and 8-bit ranges come from 100k vectors).
    monkeypatch.setattr("index.dense.SQ8_TRAIN_MAX", 1000)
    monkeypatch.setattr("index.dense.IVF_TRAIN_PER_LIST", 20)
    spec = dense_spec(kind, len(vectors))
    assert spec.train_vectors is not None and spec.train_vectors < len(vectors)
    a, b = build_dense_index(vectors, spec), build_dense_index(vectors, spec)
    if kind is DenseIndexType.IVF_SQ8:
        assert faiss.serialize_index(a).tobytes() == faiss.serialize_index(b).tobytes()
    else:
        sq_a = faiss.downcast_index(a.storage).sq
        sq_b = faiss.downcast_index(b.storage).sq
        np.testing.assert_array_equal(faiss.vector_to_array(sq_a.trained), faiss.vector_to_array(sq_b.trained))


@pytest.mark.parametrize("kind", CONCRETE)
@pytest.mark.parametrize("n", [0, 1, 3])
def test_tiny_and_empty_sets_build_and_search(kind: DenseIndexType, n: int) -> None:
    vectors, queries = clustered(8, 2)
    index = build_dense_index(vectors[:n], kind)
    scores, ids = search_dense(index, queries, 5)
    assert ids.shape == (2, n) and np.isfinite(scores).all()
    if n:
        assert set(ids.ravel().tolist()) <= set(range(n))


def test_auto_picks_flat_up_to_the_threshold_then_hnsw_sq8() -> None:
    auto = DenseIndexType.AUTO
    assert resolve_dense_type(auto, 0) is DenseIndexType.FLAT
    assert resolve_dense_type(auto, FLAT_MAX_VECTORS) is DenseIndexType.FLAT
    assert resolve_dense_type(auto, FLAT_MAX_VECTORS + 1) is DenseIndexType.HNSW_SQ8
    assert resolve_dense_type(auto, 10_000_000) is DenseIndexType.HNSW_SQ8
    for kind in CONCRETE:  # an explicit kind is never second-guessed
        assert resolve_dense_type(kind, 0) is kind
        assert resolve_dense_type(kind, 10_000_000) is kind
    # The built-in corpus, PubMedQA (3,988 chunks) and COVID-QA stay exact.
    assert dense_spec(auto, 3_988) == DenseSpec(DenseIndexType.FLAT)


def test_search_settings_follow_the_measured_sizes() -> None:
    for table in (EF_SEARCH_BY_SIZE, NPROBE_BY_SIZE):
        for size, value in table:
            assert by_size(table, size) == value
            assert by_size(table, size + 1) != value or size == table[-1][0]
        assert by_size(table, table[-1][0] + 1) == 2 * table[-1][1]  # unmeasured: doubled
    assert by_size(EF_SEARCH_BY_SIZE, FLAT_MAX_VECTORS + 1) == 64
    assert dense_spec(DenseIndexType.AUTO, 1_000_000).ef_search == 256  # the 1M measurement: recall 0.980
    assert dense_spec(DenseIndexType.AUTO, 1_000_001).ef_search == 512
    assert [ivf_lists(n) for n in (10_000, 100_000, 1_000_000)] == [256, 512, 2048]
    assert ivf_lists(0) == ivf_lists(38) == 1
    ivf = dense_spec(DenseIndexType.IVF_SQ8, 1_000_000)
    assert (ivf.nlist, ivf.nprobe, ivf.train_vectors) == (2048, 256, 40 * 2048)
    assert dense_spec(DenseIndexType.IVF_SQ8, 100).nprobe <= dense_spec(DenseIndexType.IVF_SQ8, 100).nlist


def test_manifest_entries_name_the_concrete_kind() -> None:
    assert dense_spec(DenseIndexType.FLAT, 10).to_json() == {"type": "flat"}  # as before: small indexes unchanged
    assert dense_spec(DenseIndexType.AUTO, FLAT_MAX_VECTORS + 1).to_json() == {
        "type": "hnsw-sq8",
        "M": 32,
        "efConstruction": 100,
        "efSearch": 64,
        "train_vectors": FLAT_MAX_VECTORS + 1,
    }
    assert [dense_spec(k, 10).keeps_exact_vectors for k in CONCRETE] == [True, True, False, False]
    with pytest.raises(ValueError, match="resolve `auto`"):
        DenseSpec(DenseIndexType.AUTO)


def test_kind_names_accept_the_bench_spelling_and_refuse_others() -> None:
    assert DenseIndexType("hnsw_sq8") is DenseIndexType.HNSW_SQ8
    assert DenseIndexType("IVF-SQ8") is DenseIndexType.IVF_SQ8
    with pytest.raises(ValueError, match="'annoy' is not a valid DenseIndexType"):
        DenseIndexType("annoy")
