"""A Ray worker killed mid-build costs a retry, not the build; a build that cannot finish leaves the previous
index serving; a shard that is gone or slow at query time gives a flagged partial answer, never an error."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from index.chunking import Chunker
from index.shards.build import FAULT_ENV, ShardBuildError, build_sharded_index, publish_sharded
from index.shards.layout import read_sharded_manifest
from index.shards.search import ShardSearcher, load_sharded_index
from index.store import VERSIONS_DIR, IndexConfig, embedding_text, model_info, read_pointer
from qa.settings import BUILTIN_CORPUS, Settings
from tests.index.shards.test_equivalence import embedder_spec

pytestmark = [pytest.mark.ray, pytest.mark.model]
QUESTION = "What was the median overall survival with STRIDE?"


@pytest.fixture(scope="module")
def demo_inputs(embedder, demo_documents):
    chunks = list(Chunker(IndexConfig().chunking, embedder.count_tokens).chunk_all(demo_documents))
    by_id = {d.id: d for d in demo_documents}
    vectors = embedder.encode([embedding_text(by_id[c.doc_id], c) for c in chunks])
    return demo_documents, chunks, vectors, model_info(embedder)


def _publish(index_dir: Path, demo_inputs, shards: int = 3):
    docs, chunks, vectors, model = demo_inputs
    return publish_sharded(index_dir, docs, chunks, vectors, shards, model, IndexConfig(), None)


def _digests(manifest):
    return [{rel: f.sha256 for rel, f in s.files.items()} for s in manifest.shards]


def test_a_shard_worker_killed_mid_build_is_retried_and_the_index_is_the_same(
    ray_cluster, demo_inputs, tmp_path, monkeypatch
):
    clean, _ = _publish(tmp_path / "clean", demo_inputs)
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(FAULT_ENV, f"shard:{marker}")
    faulted, _ = _publish(tmp_path / "faulted", demo_inputs)
    assert marker.exists()  # a worker really was SIGKILLed in the middle of writing its shard
    assert _digests(faulted) == _digests(clean)
    assert load_sharded_index(tmp_path / "faulted").manifest.corpus.n_chunks == len(demo_inputs[1])


def test_a_build_whose_workers_keep_dying_leaves_the_previous_index_serving(
    ray_cluster, demo_inputs, tmp_path, monkeypatch
):
    index_dir = tmp_path / "idx"
    _publish(index_dir, demo_inputs, shards=2)
    before = read_pointer(index_dir)
    monkeypatch.setenv(FAULT_ENV, "shard-always:")
    with pytest.raises(ShardBuildError, match=r"current index in .* is unchanged"):
        _publish(index_dir, demo_inputs, shards=3)
    assert read_pointer(index_dir) == before
    assert not list((index_dir / VERSIONS_DIR).glob(".tmp-*"))
    assert len(load_sharded_index(index_dir).manifest.shards) == 2  # the old index still loads and serves
    monkeypatch.delenv(FAULT_ENV)
    _publish(index_dir, demo_inputs, shards=3)  # and a rerun succeeds
    assert len(read_sharded_manifest(index_dir)[1].shards) == 3


def test_an_embedding_actor_killed_mid_batch_is_restarted_and_vectors_are_unchanged(
    ray_cluster, embedder, demo_inputs, tmp_path, monkeypatch
):
    marker = tmp_path / "actor-killed"
    monkeypatch.setenv(FAULT_ENV, f"embed:{marker}")
    built = build_sharded_index(
        BUILTIN_CORPUS, tmp_path / "idx", 2, embedder_spec(embedder), model_info(embedder), IndexConfig(), actors=1
    )
    assert marker.exists()
    assert np.array_equal(built.vectors, demo_inputs[2])


class _Broken:
    """A shard whose disk is gone: every call raises."""

    def search_dense(self, *args):
        raise RuntimeError("disk gone")

    def search_lexical(self, *args):
        raise RuntimeError("disk gone")

    def ping(self):
        raise RuntimeError("disk gone")


class _Slow(ShardSearcher):
    def search_dense(self, *args):
        time.sleep(1.0)
        return super().search_dense(*args)

    def search_lexical(self, *args):
        time.sleep(1.0)
        return super().search_lexical(*args)


def _pipeline(index_dir, embedder):
    from qa.pipeline import QAPipeline

    pipe = QAPipeline(Settings(index_dir=index_dir, _env_file=None), embedder=embedder)
    pipe.warm_up()
    return pipe


def test_a_failing_or_slow_shard_gives_a_flagged_partial_answer(ray_cluster, demo_inputs, embedder, tmp_path):
    index_dir = tmp_path / "idx"
    _publish(index_dir, demo_inputs)
    pipe = _pipeline(index_dir, embedder)
    full = pipe.run(QUESTION)
    assert full.missing_shards == [] and full.to_dict()["partial"] is False

    def factory(d, v, s):
        return _Broken() if s == 1 else (_Slow(str(d), v, s) if s == 2 else ShardSearcher(str(d), v, s))

    pipe.swap_index(load_sharded_index(index_dir, timeout_s=0.2, searcher_factory=factory))
    result = pipe.run(QUESTION)
    body = result.to_dict()
    assert body["partial"] is True and body["missing_shards"] == [1, 2]
    owner = read_sharded_manifest(index_dir)[1].partition_map
    assert all(owner.shard_of(p.chunk.doc_id) == 0 for p in result.passages)  # only shard 0 answered


def wait_until_ready(index, limit_s: float = 120.0) -> dict[int, bool]:
    """Shard actors load their shard when they start: on a loaded machine that can take longer than one ping's
    deadline, so poll (bounded) until every one answers, as a service's readiness probe would."""
    import time

    deadline = time.monotonic() + limit_s
    status = index.shard_status()
    while not all(status.values()) and time.monotonic() < deadline:
        time.sleep(1.0)
        status = index.shard_status()
    return status


def test_a_dead_ray_shard_actor_is_named_and_ready_reports_it(ray_cluster, demo_inputs, embedder, tmp_path):
    index_dir = tmp_path / "idx"
    _publish(index_dir, demo_inputs)
    pipe = _pipeline(index_dir, embedder)
    local = pipe.run(QUESTION).to_dict()
    index = load_sharded_index(index_dir, backend="ray", timeout_s=5.0)
    try:
        assert wait_until_ready(index) == {0: True, 1: True, 2: True}
        pipe.swap_index(index)
        via_ray = pipe.run(QUESTION).to_dict()
        for r in (local, via_ray):
            r.pop("took_ms")
        assert via_ray == local  # actors answer exactly as in-process shards
        ray_cluster.kill(index.fanout.actors[0])
        result = pipe.run(QUESTION)
        assert result.missing_shards == [0]
        assert index.shard_status() == {0: False, 1: True, 2: True}
    finally:
        index.close()


def test_the_service_answers_200_with_a_flagged_partial_result_and_ready_names_the_shards(
    ray_cluster, demo_inputs, embedder, tmp_path
):
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.service.helpers import service_settings

    index_dir = tmp_path / "idx"
    _publish(index_dir, demo_inputs)
    settings = Settings(index_dir=index_dir, _env_file=None)
    pipe = _pipeline(index_dir, embedder)

    def factory(d, v, s):
        return _Broken() if s == 2 else ShardSearcher(str(d), v, s)

    pipe.swap_index(load_sharded_index(index_dir, timeout_s=0.5, searcher_factory=factory))
    with TestClient(create_app(service_settings(settings), pipeline=pipe)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert [(s["shard"], s["ready"]) for s in ready.json()["shards"]] == [(0, True), (1, True), (2, False)]
        res = client.post("/ask", json={"question": QUESTION})
        assert res.status_code == 200
        body = res.json()
        assert body["partial"] is True and body["missing_shards"] == [2]
