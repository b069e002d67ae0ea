"""PubMed update files applied to the owning shards: upserts, revisions, DeleteCitation, twice, out of order."""

from __future__ import annotations

import hashlib
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest

from index.chunking import Chunker, whitespace_token_count
from index.documents import Document
from index.manifest import ModelInfo
from index.shards.build import publish_sharded, read_corpus_file
from index.shards.layout import read_sharded_manifest
from index.shards.search import load_sharded_index
from index.shards.updates import UpdateFileError, apply_update_files
from index.store import IndexConfig, embedding_text, load_index, publish_index, read_pointer

pytestmark = pytest.mark.ray
DIM = 64


class HashEmbedder:
    """A deterministic stand-in for the model (a text's vector is seeded by its SHA-256): the update logic is
    what is tested here, and the same text always gets the same vector, alone or in any batch."""

    model_name = "hash-embedder"
    fingerprint = "hash-v1"
    dimension = DIM
    max_seq_length = 128

    def count_tokens(self, text: str) -> int:
        return whitespace_token_count(text)

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big")
            v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.array(rows, dtype=np.float32).reshape(len(texts), DIM)


MODEL = ModelInfo(name="hash-embedder", fingerprint="hash-v1", dimension=DIM, max_seq_length=128)


def pubmed_xml(path: Path, docs: list[Document], deletes: list[str] = ()) -> Path:
    parts = ["<?xml version='1.0' encoding='utf-8'?>", "<PubmedArticleSet>"]
    for d in docs:
        parts.append(
            "<PubmedArticle><MedlineCitation><PMID Version='1'>"
            f"{d.id}</PMID><Article><ArticleTitle>{escape(d.title or '')}</ArticleTitle><Abstract>"
            f"<AbstractText>{escape(d.text)}</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>"
        )
    if deletes:
        parts.append(
            "<DeleteCitation>" + "".join(f"<PMID Version='1'>{p}</PMID>" for p in deletes) + "</DeleteCitation>"
        )
    parts.append("</PubmedArticleSet>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _chunks_and_vectors(docs, emb):
    chunks = list(Chunker(IndexConfig().chunking, emb.count_tokens).chunk_all(docs))
    by_id = {d.id: d for d in docs}
    return chunks, emb.encode([embedding_text(by_id[c.doc_id], c) for c in chunks])


@pytest.fixture
def baseline(ray_cluster, pubmedqa_documents, tmp_path):
    """40 PubMedQA abstracts as a PubMed baseline file, indexed on 4 shards; and an update file for them (its
    changes fall on shards 0, 2 and 3: shard 1 is untouched)."""
    source = [Document(d.id, d.text, f"Title of {d.id}") for d in pubmedqa_documents[:46]]
    base = pubmed_xml(tmp_path / "pubmed23n0001.xml", source[:40])
    docs = read_corpus_file(str(base), "pubmed-xml", "raise")
    emb = HashEmbedder()
    chunks, vectors = _chunks_and_vectors(docs, emb)
    index_dir = tmp_path / "idx"
    publish_sharded(index_dir, docs, chunks, vectors, 4, MODEL, IndexConfig(), str(base))
    revised = Document(docs[3].id, docs[3].text + " Revised: overall survival was 99 months.", docs[3].title)
    update = pubmed_xml(
        tmp_path / "pubmed23n0002.xml",
        [*source[40:43], revised, docs[5]],  # 3 new, 1 revised, 1 sent again unchanged
        deletes=[docs[7].id, docs[8].id, "999999999"],  # 2 held, 1 the index never had
    )
    return index_dir, docs, update, emb, tmp_path


def test_an_update_file_changes_only_the_owning_shards(baseline):
    index_dir, docs, update, emb, _ = baseline
    _, before = read_sharded_manifest(index_dir)
    [out] = apply_update_files(index_dir, [update], emb)
    assert out.applied and len(out.added) == 3 and out.replaced == [docs[3].id] and out.unchanged == [docs[5].id]
    assert sorted(out.deleted) == sorted([docs[7].id, docs[8].id]) and out.absent_deletes == ["999999999"]
    _, after = read_sharded_manifest(index_dir)
    owners = {after.partition_map.shard_of(i) for i in [*out.added, *out.replaced, *out.deleted]}
    assert set(out.shards) == owners and owners != {0, 1, 2, 3}
    for s in range(4):
        same = before.shards[s].files == after.shards[s].files
        assert same == (s not in owners), s  # untouched shards keep their files byte for byte
    assert [u.name for u in after.updates] == ["pubmed23n0002.xml"]
    index = load_sharded_index(index_dir)
    assert docs[7].id not in index.documents and docs[8].id not in index.documents
    assert all(i in index.documents for i in out.added)
    assert index.documents[docs[3].id].text.endswith("99 months.")
    assert len(index.documents) == 40 + 3 - 2
    assert all(c.doc_id != docs[7].id for c in index.chunks)


def test_applying_the_same_file_twice_changes_nothing(baseline):
    index_dir, _, update, emb, _ = baseline
    apply_update_files(index_dir, [update], emb)
    pointer = read_pointer(index_dir)
    [again] = apply_update_files(index_dir, [update], emb)
    assert not again.applied and read_pointer(index_dir) == pointer


def test_update_files_apply_in_order_and_a_reissued_file_is_refused(baseline):
    index_dir, docs, update, emb, tmp = baseline
    apply_update_files(index_dir, [update], emb)
    older = pubmed_xml(tmp / "pubmed23n0001.xml", [], deletes=[docs[1].id])
    with pytest.raises(UpdateFileError, match=r"older than pubmed23n0002\.xml"):
        apply_update_files(index_dir, [older], emb)
    (tmp / "other").mkdir()
    reissued = pubmed_xml(tmp / "other" / "pubmed23n0002.xml", [], deletes=[docs[1].id])
    with pytest.raises(UpdateFileError, match="applied before with other content"):
        apply_update_files(index_dir, [reissued], emb)


def test_after_an_update_and_a_statistics_refresh_the_index_ranks_as_a_fresh_single_index(baseline):
    index_dir, _, update, emb, tmp = baseline
    apply_update_files(index_dir, [update], emb, refresh_statistics=True)
    sharded = load_sharded_index(index_dir)
    docs = list(sharded.documents.values())  # the updated corpus, in the order a single-node update keeps
    chunks, vectors = _chunks_and_vectors(docs, emb)
    assert [c.id for c in sharded.chunks] == [c.id for c in chunks]
    publish_index(tmp / "single", docs, chunks, vectors, MODEL, IndexConfig())
    single = load_index(tmp / "single")
    queries = emb.encode([f"query {i}" for i in range(50)])
    assert np.array_equal(single.dense.search(queries, 10)[1], sharded.dense.search(queries, 10)[1])
    for q in ["overall survival months", "patients with cancer", "randomized controlled trial outcome"]:
        assert sharded.lexical.search(q, 10) == single.lexical.search(q, 10)


@pytest.mark.model
def test_qa_index_pubmed_update_applies_a_file_once(ray_cluster, embedder, pubmedqa_documents, tmp_path):
    from typer.testing import CliRunner

    from cli import app
    from index.store import model_info

    source = [Document(d.id, d.text, f"Title of {d.id}") for d in pubmedqa_documents[:13]]
    docs = read_corpus_file(str(pubmed_xml(tmp_path / "pubmed23n0001.xml", source[:12])), "pubmed-xml", "raise")
    chunks, vectors = _chunks_and_vectors(docs, embedder)
    index_dir = tmp_path / "idx"
    publish_sharded(index_dir, docs, chunks, vectors, 2, model_info(embedder), IndexConfig(), None)
    update = pubmed_xml(tmp_path / "pubmed23n0002.xml", [source[12]], deletes=[docs[0].id])
    args = ["index", "--index-dir", str(index_dir), "--pubmed-update", str(update)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "1 added, 0 revised, 1 deleted" in first.stdout
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "already applied, unchanged" in again.stdout
    index = load_sharded_index(index_dir)
    assert source[12].id in index.documents and docs[0].id not in index.documents


def test_an_update_with_another_model_is_refused_by_name(baseline):
    index_dir, _, update, _, _ = baseline

    class Other(HashEmbedder):
        fingerprint = "other-weights"

    with pytest.raises(UpdateFileError, match="other-weights"):
        apply_update_files(index_dir, [update], Other())


def test_ray_data_reads_a_folder_of_jsonl_and_gzipped_pubmed_xml_in_order(ray_cluster, pubmedqa_documents, tmp_path):
    import gzip

    from index.errors import CorpusError
    from index.shards.build import read_documents
    from tests.index.shards.conftest import write_jsonl

    docs = [Document(d.id, d.text, f"Title of {d.id}") for d in pubmedqa_documents[:20]]
    folder = tmp_path / "baseline"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", docs[:10])
    xml = pubmed_xml(tmp_path / "b.xml", docs[10:])
    (folder / "b.xml.gz").write_bytes(gzip.compress(xml.read_bytes()))
    got = read_documents(folder)
    want = docs[:10] + read_corpus_file(str(xml), "pubmed-xml", "raise")  # as the single-node reader reads XML
    assert [(d.id, d.text, d.title) for d in got] == [(d.id, d.text, d.title) for d in want]
    assert [d.id for d in got] == [d.id for d in docs]
    write_jsonl(folder / "c.jsonl", docs[3:4])
    with pytest.raises(CorpusError, match=f"{docs[3].id}.*duplicate id"):
        read_documents(folder)
