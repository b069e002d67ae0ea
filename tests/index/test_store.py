from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import index.store as store_mod
from index.chunking import ChunkingConfig
from index.dense import DenseIndexType
from index.documents import Document
from index.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.retriever import RetrievalMode, Retriever
from index.store import (
    CURRENT_NAME,
    VECTORS_NAME,
    IndexConfig,
    build_index,
    chunk_vectors,
    current_version,
    load_index,
    read_manifest,
)

pytestmark = pytest.mark.model

DOCS = [
    Document("d1", "Sorafenib is a kinase inhibitor. Median overall survival was 10.7 months."),
    Document(
        "d2", "Lenvatinib was non-inferior to sorafenib. The REFLECT trial enrolled 954 patients.", title="REFLECT"
    ),
    Document("d3", "Radioactive iodine treats thyroid cancer. Some tumours become refractory."),
]


@pytest.fixture()
def built(tmp_path: Path, embedder) -> Path:
    build_index(DOCS, embedder, tmp_path / "idx", IndexConfig(), source="tests")
    return tmp_path / "idx"


def load(path: Path, embedder, config: IndexConfig | None = None):
    return load_index(path, config or IndexConfig(), embedder.model_name, embedder.fingerprint)


def test_build_and_load_round_trip(built: Path, embedder) -> None:
    idx = load(built, embedder)
    m = idx.manifest
    assert m.corpus.n_documents == 3 and m.corpus.n_chunks == len(idx.chunks) == idx.dense.ntotal
    assert m.model.dimension == embedder.dimension == 384
    assert m.chunking["max_tokens"] == 128 and m.corpus.source == "tests"
    for c in idx.chunks:
        assert idx.documents[c.doc_id].text[c.start : c.end] == c.text
    assert set(m.files) >= {"documents.jsonl", "chunks.jsonl", "dense.faiss"}
    assert not any(p.suffix in {".pkl", ".pickle"} for p in built.rglob("*"))


def test_missing_index_says_how_to_build(tmp_path: Path, embedder) -> None:
    with pytest.raises(IndexNotFoundError, match="qa index"):
        load(tmp_path / "none", embedder)


def test_mismatched_settings_are_refused_by_name(built: Path, embedder) -> None:
    with pytest.raises(IndexMismatchError, match="chunking"):
        load(built, embedder, IndexConfig(chunking=ChunkingConfig(max_tokens=64)))
    with pytest.raises(IndexMismatchError, match="dense index"):
        load(built, embedder, IndexConfig(dense_type=DenseIndexType.HNSW))
    with pytest.raises(IndexMismatchError, match="embedding model"):
        load_index(built, IndexConfig(), "other-model", "0123456789abcdef")


@pytest.mark.parametrize("name", ["dense.faiss", "chunks.jsonl", "documents.jsonl"])
def test_corrupt_file_is_refused_naming_it(built: Path, embedder, name: str) -> None:
    version = current_version(built)
    assert version is not None
    path = version / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=name):
        load(built, embedder)
    path.write_bytes(bytes(data[: len(data) // 3]))  # truncated
    with pytest.raises(IndexCorruptError, match=name):
        load(built, embedder)
    path.unlink()
    with pytest.raises(IndexCorruptError, match=f"{name}: missing"):
        load(built, embedder)


def test_garbage_manifest_and_pointer(built: Path, embedder) -> None:
    version = current_version(built)
    assert version is not None
    (version / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="manifest"):
        read_manifest(built)
    (built / CURRENT_NAME).write_text("../../etc\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="does not name an index version"):
        read_manifest(built)


def test_crash_during_build_leaves_previous_index_usable(built: Path, embedder, monkeypatch) -> None:
    before = load(built, embedder)

    def explode(*_args, **_kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(store_mod, "save_dense_index", explode)
    with pytest.raises(OSError, match="disk full"):
        build_index([*DOCS, Document("d4", "A new document.")], embedder, built, IndexConfig())
    after = load(built, embedder)
    assert after.path == before.path
    assert after.manifest.corpus.n_documents == 3
    assert not list((built / "versions").glob(".tmp-*"))  # the half-written build was cleaned up


def test_rebuild_switches_current_and_prunes_old_versions(built: Path, embedder) -> None:
    first = current_version(built)
    for i in range(3):
        build_index([*DOCS, Document(f"n{i}", f"Extra document number {i}.")], embedder, built, IndexConfig())
    latest = current_version(built)
    assert latest != first
    assert load(built, embedder).manifest.corpus.n_documents == 4
    assert len([p for p in (built / "versions").iterdir() if not p.name.startswith(".")]) <= store_mod.KEEP_VERSIONS


def test_default_auto_builds_flat_for_a_small_corpus_and_records_it(built: Path, embedder) -> None:
    idx = load(built, embedder)
    assert IndexConfig().dense_type is DenseIndexType.AUTO
    assert idx.manifest.dense == {"type": "flat"}  # the concrete kind, as before auto: small indexes unchanged
    assert VECTORS_NAME not in idx.manifest.files
    load(built, embedder, IndexConfig(dense_type=DenseIndexType.FLAT))  # asking for flat by name is the same


@pytest.fixture(scope="module")
def flat_reference(tmp_path_factory: pytest.TempPathFactory, embedder):
    path = tmp_path_factory.mktemp("flat") / "idx"
    build_index(DOCS, embedder, path, IndexConfig(dense_type=DenseIndexType.FLAT))
    return load(path, embedder)


@pytest.mark.parametrize("kind", [DenseIndexType.HNSW, DenseIndexType.HNSW_SQ8, DenseIndexType.IVF_SQ8])
def test_each_dense_kind_builds_loads_and_ranks_like_flat(tmp_path: Path, embedder, flat_reference, kind) -> None:
    config = IndexConfig(dense_type=kind)
    build_index(DOCS, embedder, tmp_path / "h", config)
    idx = load(tmp_path / "h", embedder, config)
    assert idx.manifest.dense["type"] == kind.value
    assert idx.dense.ntotal == len(idx.chunks)
    # The 8-bit kinds keep the exact vectors beside their codes, for updates to rebuild from.
    assert (VECTORS_NAME in idx.manifest.files) is (kind is not DenseIndexType.HNSW)
    np.testing.assert_allclose(chunk_vectors(idx), chunk_vectors(flat_reference), atol=1e-5)
    for q in ["overall survival with sorafenib", "REFLECT trial size", "refractory thyroid cancer"]:
        got = [p.chunk.id for p in Retriever(idx, embedder).run(q, 3, RetrievalMode.DENSE)]
        want = [p.chunk.id for p in Retriever(flat_reference, embedder).run(q, 3, RetrievalMode.DENSE)]
        assert got == want, q


def test_auto_loads_what_it_builds_above_the_threshold(tmp_path: Path, embedder, monkeypatch) -> None:
    monkeypatch.setattr("index.dense.FLAT_MAX_VECTORS", 2)  # three small documents count as a large corpus
    build_index(DOCS, embedder, tmp_path / "a", IndexConfig())
    idx = load(tmp_path / "a", embedder)  # a default-settings service accepts the default build
    assert idx.manifest.dense["type"] == "hnsw-sq8" and idx.manifest.dense["efSearch"] == 64
    load(tmp_path / "a", embedder, IndexConfig(dense_type=DenseIndexType.HNSW_SQ8))
    with pytest.raises(IndexMismatchError, match="dense index: index has 'hnsw-sq8', configured 'flat'"):
        load(tmp_path / "a", embedder, IndexConfig(dense_type=DenseIndexType.FLAT))


def test_an_index_auto_would_not_build_is_refused_saying_how_to_keep_it(tmp_path: Path, embedder) -> None:
    build_index(DOCS, embedder, tmp_path / "h", IndexConfig(dense_type=DenseIndexType.HNSW))
    with pytest.raises(IndexMismatchError) as info:
        load(tmp_path / "h", embedder)
    message = str(info.value)
    assert "index has 'hnsw' over" in message and "configured 'auto', which picks 'flat'" in message
    assert "QA_DENSE_INDEX=hnsw" in message and "rebuild it with `qa index`" in message


def test_damaged_exact_vectors_of_an_8bit_index_are_refused_naming_the_file(tmp_path: Path, embedder) -> None:
    config = IndexConfig(dense_type=DenseIndexType.IVF_SQ8)
    build_index(DOCS, embedder, tmp_path / "i", config)
    version = current_version(tmp_path / "i")
    assert version is not None
    path = version / VECTORS_NAME
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=VECTORS_NAME):
        load(tmp_path / "i", embedder, config)
