from __future__ import annotations

import itertools

import pytest

from index.retriever import RetrievalMode, reciprocal_rank_fusion


def test_rrf_hand_computed() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], [1.0, 1.0], k=60)
    scores = dict(fused)
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert [i for i, _ in fused] == [1, 3, 2]
    # weights scale each ranking's contribution; ties break on the smaller id
    assert [i for i, _ in reciprocal_rank_fusion([[5], [4]], [1.0, 1.0], 60)] == [4, 5]


@pytest.mark.model
@pytest.mark.parametrize("mode", list(RetrievalMode))
def test_stride_question_finds_abs02_in_top3_documents(demo_pipeline, mode: RetrievalMode) -> None:
    passages = demo_pipeline.retriever.run("What was the median overall survival with STRIDE?", top_k=10, mode=mode)
    docs: list[str] = []
    for p in passages:
        if p.chunk.doc_id not in docs:
            docs.append(p.chunk.doc_id)
    assert "abs-02" in docs[:3]
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(passages))


@pytest.mark.model
def test_retrieval_is_deterministic(demo_pipeline) -> None:
    q = "Which kinase does sorafenib activate?"
    first = [(p.chunk.id, p.score) for p in demo_pipeline.retriever.run(q, 8)]
    assert first == [(p.chunk.id, p.score) for p in demo_pipeline.retriever.run(q, 8)]


@pytest.mark.model
def test_run_batch_gives_each_query_what_run_gives_it(demo_pipeline) -> None:
    retriever = demo_pipeline.retriever
    queries = ["What was the median overall survival with STRIDE?", "Which kinases does lenvatinib inhibit?", "HCC"]
    modes = [RetrievalMode.HYBRID, RetrievalMode.DENSE, RetrievalMode.BM25]
    ks = [5, 12, 3]
    timings: dict[str, float] = {}
    batch = retriever.run_batch(queries, ks, modes, timings=timings)
    for q, k, m, got in zip(queries, ks, modes, batch, strict=True):
        alone = retriever.run(q, k, m)
        assert [p.chunk.id for p in got] == [p.chunk.id for p in alone]
        assert [p.score for p in got] == pytest.approx([p.score for p in alone], abs=1e-5)
        assert [p.dense_score for p in got] == pytest.approx([p.dense_score for p in alone], abs=1e-5)
    assert set(timings) == {"embed", "search"} and min(timings.values()) >= 0
    bm25_only: dict[str, float] = {}
    retriever.run("HCC", 3, RetrievalMode.BM25, timings=bm25_only)
    assert bm25_only["embed"] < 1.0  # no question vector is computed for BM25
    with pytest.raises(ValueError, match="one entry per query"):
        retriever.run_batch(queries, [5], modes)
