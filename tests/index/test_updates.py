"""Incremental updates: add, replace and delete by id, embedding only what changed, equal to a fresh build."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest

import index.store as store_mod
import index.updates as updates_mod
from index.dense import DenseIndexType
from index.documents import Document
from index.embedder import Embedder
from index.errors import CorpusError
from index.ingest import corpus_fingerprint
from index.retriever import RetrievalMode, Retriever
from index.store import (
    IndexConfig,
    IndexConflictError,
    IndexWriteError,
    build_index,
    chunk_vectors,
    current_version,
    load_index,
    publish_version,
)
from index.updates import CorpusUpdate, UpdateError, apply_update, update_for_corpus

pytestmark = pytest.mark.model

QUERIES = [
    "What was the median overall survival with STRIDE?",
    "Which kinases does lenvatinib inhibit?",
    "regorafenib approval",
    "hazard ratio durvalumab",
    "desmoid tumors",
]
EXTRA = Document(
    "extra-1",
    "Cabozantinib improved median progression-free survival to 5.2 months in CELESTIAL. It inhibits MET.",
    title="CELESTIAL",
    meta={"year": "2018"},
)


def load(path: Path, embedder: Embedder):
    return load_index(path, IndexConfig(), embedder.model_name, embedder.fingerprint)


def ranked(index, embedder: Embedder, mode: RetrievalMode) -> list[list[tuple[str, float]]]:
    retriever = Retriever(index, embedder)
    return [[(p.chunk.id, p.score) for p in retriever.run(q, 10, mode)] for q in QUERIES]


@pytest.fixture(scope="module")
def embedder(torch_embedder: Embedder) -> Embedder:
    """The torch backend: an update equals a fresh build exactly only where a chunk's vector does not depend on
    its batch-mates; int8 ONNX quantises activations per batch (`Embedder.batch_invariant`), so its updates
    agree with a fresh build to within that rounding, not bit for bit."""
    return torch_embedder


@pytest.fixture(scope="module")
def built_base(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, demo_documents: list[Document]
) -> tuple[Path, list[Document]]:
    docs = demo_documents[:6]
    index_dir = tmp_path_factory.mktemp("base") / "idx"
    build_index(docs, embedder, index_dir, IndexConfig(), source="base")
    return index_dir, docs


@pytest.fixture()
def base(built_base: tuple[Path, list[Document]], tmp_path: Path) -> tuple[Path, list[Document]]:
    """A private copy of a six-abstract index, built once per module."""
    shutil.copytree(built_base[0], tmp_path / "idx")
    return tmp_path / "idx", built_base[1]


def test_add_replace_delete_equals_a_build_from_scratch(
    base: tuple[Path, list[Document]],
    embedder: Embedder,
    demo_documents: list[Document],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index_dir, docs = base
    changed_text = Document(docs[1].id, docs[1].text.replace("16.43", "17.25"), docs[1].title, docs[1].meta)
    assert changed_text.text != docs[1].text
    meta_only = Document(docs[4].id, docs[4].text, docs[4].title, {**docs[4].meta, "reviewed": True})
    added = [demo_documents[6], EXTRA]
    update = CorpusUpdate(upsert=[changed_text, meta_only, docs[0], *added], delete=[docs[2].id])

    embedded: list[str] = []
    real_encode = embedder.encode

    def counting_encode(texts: list[str], show_progress: bool = False) -> np.ndarray:
        embedded.extend(texts)
        return real_encode(texts, show_progress=show_progress)

    monkeypatch.setattr(embedder, "encode", counting_encode)
    result = apply_update(index_dir, update, embedder, IndexConfig())
    monkeypatch.undo()

    assert result.added == [demo_documents[6].id, EXTRA.id]
    assert result.replaced == [docs[1].id, docs[4].id]
    assert result.deleted == [docs[2].id]
    assert result.unchanged == [docs[0].id]
    # Final order: survivors in place (replacements too), additions appended.
    expected_docs = [docs[0], changed_text, docs[3], meta_only, docs[5], *added]
    assert result.documents == expected_docs

    updated = load(index_dir, embedder)
    assert updated.path == result.version == current_version(index_dir)
    # Only the changed text and the new documents were embedded; everything else reused its vector.
    new_chunks = [c for c in updated.chunks if c.doc_id in {changed_text.id, *(d.id for d in added)}]
    assert result.embedded_chunks == len(new_chunks) == len(embedded) > 0
    assert result.reused_chunks == len(updated.chunks) - len(new_chunks) > 0

    scratch_dir = tmp_path / "scratch"
    build_index(expected_docs, embedder, scratch_dir, IndexConfig(), source="base")
    scratch = load(scratch_dir, embedder)

    assert list(updated.documents.values()) == list(scratch.documents.values())
    assert [(c.id, c.start, c.end, c.text) for c in updated.chunks] == [
        (c.id, c.start, c.end, c.text) for c in scratch.chunks
    ]
    assert (
        updated.manifest.corpus.fingerprint == scratch.manifest.corpus.fingerprint == corpus_fingerprint(expected_docs)
    )
    assert updated.manifest.fingerprint == scratch.manifest.fingerprint
    assert (updated.manifest.corpus.n_documents, updated.manifest.corpus.n_chunks) == (
        len(expected_docs),
        len(scratch.chunks),
    )
    for name in ("documents.jsonl", "chunks.jsonl"):
        assert updated.manifest.files[name] == scratch.manifest.files[name]
    assert {k: v for k, v in updated.manifest.files.items() if k.startswith("bm25/")} == {
        k: v for k, v in scratch.manifest.files.items() if k.startswith("bm25/")
    }
    np.testing.assert_allclose(chunk_vectors(updated), chunk_vectors(scratch), atol=1e-5)
    for mode in RetrievalMode:
        got, want = ranked(updated, embedder, mode), ranked(scratch, embedder, mode)
        assert [[i for i, _ in r] for r in got] == [[i for i, _ in r] for r in want], mode
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose([s for _, s in g], [s for _, s in w], atol=1e-5)


def test_deletes_need_no_model_and_keep_the_rest(base: tuple[Path, list[Document]], embedder: Embedder) -> None:
    index_dir, docs = base
    before = load(index_dir, embedder)
    result = apply_update(index_dir, CorpusUpdate(delete=[docs[3].id]), embedder=None)
    after = load(index_dir, embedder)
    assert result.embedded_chunks == 0 and result.deleted == [docs[3].id]
    assert docs[3].id not in after.documents
    assert after.manifest.corpus.n_documents == 5
    assert after.manifest.corpus.fingerprint == corpus_fingerprint([d for d in docs if d.id != docs[3].id])
    kept = [i for i, c in enumerate(before.chunks) if c.doc_id != docs[3].id]
    np.testing.assert_array_equal(chunk_vectors(after), chunk_vectors(before)[kept])


def test_an_update_that_changes_nothing_publishes_nothing(
    base: tuple[Path, list[Document]], embedder: Embedder
) -> None:
    index_dir, docs = base
    before = current_version(index_dir)
    result = apply_update(index_dir, CorpusUpdate(upsert=docs[:2]), embedder)
    assert not result.changed and result.unchanged == [docs[0].id, docs[1].id]
    assert current_version(index_dir) == before == result.version


@pytest.mark.parametrize(
    ("update", "field", "words"),
    [
        (CorpusUpdate(delete=["nope"]), "delete", "unknown document ids: 'nope'"),
        (CorpusUpdate(upsert=[EXTRA, EXTRA]), "upsert", "given twice: 'extra-1'"),
        (CorpusUpdate(delete=["abs-01", "abs-01"]), "delete", "given twice"),
        (CorpusUpdate(upsert=[Document("abs-01", "x")], delete=["abs-01"]), "delete", "both added and deleted"),
        (CorpusUpdate(delete=["abs-01", "abs-02", "abs-03", "abs-04", "abs-05", "abs-06"]), "delete", "every document"),
    ],
)
def test_bad_updates_are_refused_by_name_and_change_nothing(
    base: tuple[Path, list[Document]], embedder: Embedder, update: CorpusUpdate, field: str, words: str
) -> None:
    index_dir, _ = base
    before = current_version(index_dir)
    with pytest.raises(UpdateError, match=words) as info:
        apply_update(index_dir, update, embedder)
    assert info.value.field == field
    assert current_version(index_dir) == before


def test_text_that_cannot_be_stored_is_refused_naming_the_document(
    base: tuple[Path, list[Document]], embedder: Embedder
) -> None:
    index_dir, _ = base
    with pytest.raises(CorpusError, match=r"document 'bad': not valid Unicode"):
        apply_update(index_dir, CorpusUpdate(upsert=[Document("bad", "lone \ud800 surrogate")]), embedder)


def test_a_concurrent_publish_makes_the_update_fail_instead_of_overwriting_it(
    base: tuple[Path, list[Document]], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The update read version X; another build publishes Y meanwhile; publishing over Y would lose it."""
    index_dir, docs = base
    real_load = updates_mod.load_index

    def load_then_someone_rebuilds(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        build_index(docs[:3], embedder, index_dir, IndexConfig())
        return loaded

    monkeypatch.setattr(updates_mod, "load_index", load_then_someone_rebuilds)
    with pytest.raises(IndexConflictError, match="changed"):
        apply_update(index_dir, CorpusUpdate(delete=[docs[0].id]), embedder)
    assert load(index_dir, embedder).manifest.corpus.n_documents == 3  # the other build stands
    versions = [p.name for p in (index_dir / "versions").iterdir()]
    assert not any(name.startswith(".tmp-") for name in versions)
    assert len(versions) <= store_mod.KEEP_VERSIONS  # the unpublished version was removed


def test_no_space_during_an_update_keeps_the_old_index_and_says_why(
    base: tuple[Path, list[Document]], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir, _ = base
    before = load(index_dir, embedder)

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod, "save_dense_index", no_space)
    with pytest.raises(IndexWriteError, match=r"No space left on device.*current index is unchanged"):
        apply_update(index_dir, CorpusUpdate(upsert=[EXTRA]), embedder)
    monkeypatch.undo()
    after = load(index_dir, embedder)
    assert after.path == before.path and after.manifest == before.manifest
    assert not list((index_dir / "versions").glob(".tmp-*"))


def test_update_for_corpus_turns_the_index_into_the_new_corpus(
    base: tuple[Path, list[Document]], embedder: Embedder, demo_documents: list[Document]
) -> None:
    index_dir, docs = base
    new_corpus = [docs[0], docs[2], demo_documents[7], docs[5]]
    update = update_for_corpus(load(index_dir, embedder), new_corpus)
    assert sorted(d.id for d in update.upsert) == [demo_documents[7].id]
    assert sorted(update.delete) == sorted(d.id for d in docs if d not in new_corpus)
    result = apply_update(index_dir, update, embedder)
    assert load(index_dir, embedder).manifest.corpus.fingerprint == corpus_fingerprint(new_corpus)
    assert result.embedded_chunks == len(load(index_dir, embedder).chunks_of(demo_documents[7].id))


def test_rollback_by_publishing_an_older_version(base: tuple[Path, list[Document]], embedder: Embedder) -> None:
    index_dir, docs = base
    first = current_version(index_dir)
    assert first is not None
    apply_update(index_dir, CorpusUpdate(delete=[docs[0].id]), embedder=None)
    assert load(index_dir, embedder).manifest.corpus.n_documents == 5
    publish_version(index_dir, first.name)
    assert load(index_dir, embedder).manifest.corpus.n_documents == 6


@pytest.mark.parametrize("kind", [DenseIndexType.HNSW, DenseIndexType.HNSW_SQ8, DenseIndexType.IVF_SQ8])
def test_updates_of_every_dense_kind_equal_a_fresh_build(
    kind: DenseIndexType, embedder: Embedder, demo_documents: list[Document], tmp_path: Path
) -> None:
    """HNSW cannot remove vectors and 8-bit codes must be retrained: the dense part is rebuilt from the exact
    vectors (FAISS's own for HNSW, `vectors.npy` for the 8-bit kinds), so the result is a fresh build's."""
    config = IndexConfig(dense_type=kind)
    docs = demo_documents[:5]
    build_index(docs, embedder, tmp_path / "idx", config)
    changed = Document(docs[1].id, docs[1].text.replace("16.43", "17.25"), docs[1].title, docs[1].meta)
    update = CorpusUpdate(upsert=[changed, demo_documents[6], EXTRA], delete=[docs[3].id])
    result = apply_update(tmp_path / "idx", update, embedder, config)
    expected = [docs[0], changed, docs[2], docs[4], demo_documents[6], EXTRA]
    assert result.documents == expected and result.reused_chunks > 0

    build_index(expected, embedder, tmp_path / "scratch", config)
    updated = load_index(tmp_path / "idx", config, embedder.model_name, embedder.fingerprint)
    scratch = load_index(tmp_path / "scratch", config, embedder.model_name, embedder.fingerprint)
    assert updated.manifest.dense == scratch.manifest.dense and updated.manifest.dense["type"] == kind.value
    assert updated.manifest.fingerprint == scratch.manifest.fingerprint
    np.testing.assert_allclose(chunk_vectors(updated), chunk_vectors(scratch), atol=1e-5)
    for mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID):
        got, want = ranked(updated, embedder, mode), ranked(scratch, embedder, mode)
        assert [[i for i, _ in r] for r in got] == [[i for i, _ in r] for r in want], mode
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose([s for _, s in g], [s for _, s in w], atol=1e-4)


def test_an_update_across_the_auto_threshold_switches_kind_and_still_loads(
    base: tuple[Path, list[Document]], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir, docs = base
    before = load(index_dir, embedder)
    assert before.manifest.dense == {"type": "flat"}
    monkeypatch.setattr("index.dense.FLAT_MAX_VECTORS", len(before.chunks))  # the next chunk crosses it
    apply_update(index_dir, CorpusUpdate(upsert=[EXTRA]), embedder)
    after = load(index_dir, embedder)  # default `auto` settings accept the kind auto picked for the new size
    assert after.manifest.dense["type"] == "hnsw-sq8"
    apply_update(index_dir, CorpusUpdate(delete=[EXTRA.id, docs[0].id]), embedder=None)
    assert load(index_dir, embedder).manifest.dense == {"type": "flat"}  # and back below it
