"""A sharded index built on a local Ray cluster answers as the single-node index of the same corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index.chunking import Chunker, whitespace_token_count
from index.dense import DenseIndexType
from index.errors import IndexCorruptError
from index.manifest import MANIFEST_NAME
from index.retriever import Retriever
from index.shards.build import EmbedderSpec, build_sharded_index, publish_sharded
from index.shards.layout import is_sharded, read_sharded_manifest, shard_dir_name
from index.shards.search import load_sharded_index
from index.store import IndexConfig, build_index, load_index, model_info, publish_index
from qa.settings import BUILTIN_CORPUS, Settings

pytestmark = [pytest.mark.ray, pytest.mark.model]

QUESTIONS = [
    "What was the median overall survival with STRIDE?",
    "Which drug was compared with sorafenib?",
    "How many patients were randomly assigned?",
    "What adverse events of grade 3 or 4 occurred?",
    "What is hepatocellular carcinoma?",
]


def embedder_spec(embedder) -> EmbedderSpec:
    cache = None if embedder.onnx_cache_dir is None else str(embedder.onnx_cache_dir)
    return EmbedderSpec(embedder.model_name, embedder.batch_size, embedder.backend.value, cache, embedder.device)


@pytest.fixture(scope="module")
def demo_pair(ray_cluster, embedder, demo_documents, tmp_path_factory):
    """The built-in corpus indexed single-node and as 3 shards on Ray: (single dir, sharded dir, build)."""
    root = tmp_path_factory.mktemp("shard-eq")
    build_index(demo_documents, embedder, root / "single", IndexConfig())
    built = build_sharded_index(
        BUILTIN_CORPUS, root / "sharded", 3, embedder_spec(embedder), model_info(embedder), IndexConfig(), actors=2
    )
    return root / "single", root / "sharded", built


def test_same_chunks_and_vectors(demo_pair):
    single_dir, sharded_dir, built = demo_pair
    single, sharded = load_index(single_dir), load_sharded_index(sharded_dir)
    assert [(c.id, c.start, c.end) for c in sharded.chunks] == [(c.id, c.start, c.end) for c in single.chunks]
    assert list(sharded.documents) == list(single.documents)
    # int8 activations are scaled per batch: the actor pool got the single-node batches, so vectors are equal.
    assert np.array_equal(built.vectors, single.dense.reconstruct_n(0, single.dense.ntotal))
    assert is_sharded(sharded_dir) and not is_sharded(single_dir)


def test_one_manifest_lists_every_shard_file_and_the_partition_map(demo_pair):
    _, sharded_dir, _ = demo_pair
    version, manifest = read_sharded_manifest(sharded_dir)
    assert len(manifest.shards) == 3 and manifest.partition_map.n_shards == 3
    assert sum(s.n_chunks for s in manifest.shards) == manifest.corpus.n_chunks
    assert "bm25_stats.json" in manifest.shared
    listed = {rel for s in manifest.shards for rel in s.files} | set(manifest.shared)
    on_disk = {p.relative_to(version).as_posix() for p in version.rglob("*") if p.is_file()} - {MANIFEST_NAME}
    assert listed == on_disk
    pmap = manifest.partition_map
    for info in manifest.shards:
        folder = version / shard_dir_name(info.shard)
        for line in (folder / "documents.jsonl").read_text().splitlines():
            assert pmap.shard_of(json.loads(line)["id"]) == info.shard  # every chunk of a document on its shard


def test_dense_bm25_and_hybrid_rank_as_single_node(demo_pair, embedder):
    single_dir, sharded_dir, _ = demo_pair
    single = Retriever(load_index(single_dir), embedder)
    sharded = Retriever(load_sharded_index(sharded_dir), embedder)
    for q in QUESTIONS:
        for mode in ("dense", "bm25", "hybrid"):
            a, b = single.run(q, 10, mode), sharded.run(q, 10, mode)
            assert [(p.chunk.id, p.score, p.dense_score, p.lexical_score) for p in b] == [
                (p.chunk.id, p.score, p.dense_score, p.lexical_score) for p in a
            ], (q, mode)


def test_term_statistics_are_the_single_nodes(demo_pair):
    """Question coverage (qa.coverage) weighs terms by their chunk frequency: the same on either layout."""
    from index.lexical import tokenize

    single_dir, sharded_dir, _ = demo_pair
    single, sharded = load_index(single_dir).lexical, load_sharded_index(sharded_dir).lexical
    terms = sorted({t for q in QUESTIONS for t in tokenize(q)} | {"tivozanib"})
    assert sharded.n_chunks == single.n_chunks
    assert sharded.document_frequencies(terms) == single.document_frequencies(terms)
    assert "tivozanib" not in single.document_frequencies(terms) and single.document_frequencies(["sorafenib"])


def test_pipeline_answers_identically(demo_pair, embedder):
    from qa.pipeline import QAPipeline

    single_dir, sharded_dir, _ = demo_pair
    out = []
    for d in (single_dir, sharded_dir):
        pipe = QAPipeline(Settings(index_dir=d, _env_file=None), embedder=embedder)
        pipe.warm_up()
        out.append([pipe.run(q).to_dict() for q in QUESTIONS])
    for a, b in zip(*out, strict=True):
        for r in (a, b):
            r.pop("took_ms"), r.pop("index_fingerprint")
        assert a == b
    assert out[1][0]["partial"] is False and out[1][0]["missing_shards"] == []


def test_a_tampered_shard_file_is_refused_by_name(demo_pair, tmp_path):
    import shutil

    _, sharded_dir, _ = demo_pair
    copy = tmp_path / "copy"
    shutil.copytree(sharded_dir, copy)
    version, _ = read_sharded_manifest(copy)
    victim = version / shard_dir_name(1) / "chunks.jsonl"
    victim.write_text(victim.read_text()[:-5])
    with pytest.raises(IndexCorruptError, match=r"shards/001/chunks\.jsonl"):
        load_sharded_index(copy)


@pytest.mark.parametrize("kind", [DenseIndexType.FLAT, DenseIndexType.IVF_SQ8])
def test_a_thousand_abstracts_rank_as_one_index(ray_cluster, pubmedqa_documents, pubmedqa_questions, tmp_path, kind):
    """PubMedQA's 1,000 abstracts over 4 shards: dense top-10 (exact flat shards, and IVF-SQ8 shards filled from
    one shared quantizer) and BM25 top-10 identical to the single index for 200 questions. Vectors are seeded
    random unit vectors (the merge is what is tested; the model is tested above)."""
    docs = pubmedqa_documents
    config = IndexConfig(dense_type=kind)
    chunks = list(Chunker(config.chunking, whitespace_token_count).chunk_all(docs))
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(chunks), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    model = model_info_stub()
    publish_index(tmp_path / "single", docs, chunks, vectors, model, config)
    publish_sharded(tmp_path / "sharded", docs, chunks, vectors, 4, model, config, None)
    single, sharded = load_index(tmp_path / "single"), load_sharded_index(tmp_path / "sharded")
    assert sharded.manifest.dense["type"] == kind.value
    queries = rng.standard_normal((200, 384)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    s_scores, s_ids = single.dense.search(queries, 10)
    m_scores, m_ids = sharded.dense.search(queries, 10)
    assert np.array_equal(s_ids, m_ids) and np.array_equal(s_scores, m_scores)
    for q in pubmedqa_questions[:200]:
        assert sharded.lexical.search(q, 10) == single.lexical.search(q, 10)


def model_info_stub():
    from index.manifest import ModelInfo

    return ModelInfo(name="random-unit-vectors", fingerprint="seed0", dimension=384, max_seq_length=128)
