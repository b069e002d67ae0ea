from __future__ import annotations

import itertools

import pytest

from index.retriever import FusionConfig, FusionMethod, RetrievalMode, Retriever, reciprocal_rank_fusion, zscore_fusion


def test_rrf_hand_computed() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], [1.0, 1.0], k=60)
    scores = dict(fused)
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert [i for i, _ in fused] == [1, 3, 2]
    # weights scale each ranking's contribution; ties break on the smaller id
    assert [i for i, _ in reciprocal_rank_fusion([[5], [4]], [1.0, 1.0], 60)] == [4, 5]


def test_zscore_fusion_hand_computed() -> None:
    # dense: 0.9, 0.5, 0.1 -> z = 1.2247, 0, -1.2247; bm25: 8, 2 -> z = 1, -1
    fused = dict(zscore_fusion([[(1, 0.9), (2, 0.5), (3, 0.1)], [(3, 8.0), (4, 2.0)]], [0.3, 0.7]))
    z = 1.5**0.5
    assert fused[1] == pytest.approx(0.3 * z + 0.7 * -1)  # missing from BM25: that list's lowest z
    assert fused[3] == pytest.approx(0.3 * -z + 0.7 * 1)
    assert fused[4] == pytest.approx(0.3 * -z + 0.7 * -1)  # missing from dense: the dense floor
    assert fused[2] == pytest.approx(0.3 * 0 + 0.7 * -1)
    assert sorted(fused, key=lambda i: -fused[i]) == [3, 1, 2, 4]


def test_zscore_fusion_keeps_score_gaps_that_rrf_drops() -> None:
    # BM25 barely prefers 2 over 1; dense strongly prefers 1. RRF sees two mirrored ranks and ties (smaller id wins
    # by rule); z-scores see the margins and pick 1 whatever the ids.
    dense = [(1, 0.9), (2, 0.2), (3, 0.1)]
    lexical = [(2, 10.0), (1, 9.9), (3, 1.0)]
    assert zscore_fusion([dense, lexical], [0.5, 0.5])[0][0] == 1
    assert zscore_fusion([[(5, 0.9), (6, 0.2), (7, 0.1)], [(6, 10.0), (5, 9.9), (7, 1.0)]], [0.5, 0.5])[0][0] == 5


def test_zscore_fusion_degenerate_lists() -> None:
    assert zscore_fusion([[], []], [0.3, 0.7]) == []
    # one candidate, or equal scores: no spread to standardise, presence alone counts
    assert zscore_fusion([[(1, 0.5)], []], [0.3, 0.7]) == [(1, 0.0)]
    assert [i for i, _ in zscore_fusion([[(2, 0.5), (1, 0.5)], [(2, 3.0)]], [0.3, 0.7])] == [1, 2]
    assert zscore_fusion([[(1, 0.9), (2, 0.1)], [(2, 5.0), (1, 1.0)]], [0.3, 0.0])[0][0] == 1  # weight 0 ignored


@pytest.mark.model
@pytest.mark.parametrize("method", list(FusionMethod))
def test_hybrid_methods_rank_the_stride_abstract_first(demo_pipeline, method: FusionMethod) -> None:
    retriever = Retriever(demo_pipeline.index, demo_pipeline.embedder, FusionConfig(10.0, 0.3, 0.7, 50, method))
    passages = retriever.run("What was the median overall survival with STRIDE in the HIMALAYA trial?", 5)
    assert passages[0].chunk.doc_id in {"abs-01", "abs-02", "abs-12"}  # the HIMALAYA reports
    assert all(a.score >= b.score for a, b in itertools.pairwise(passages))


@pytest.mark.model
def test_the_retriever_expands_the_corpus_abbreviations_for_bm25_itself(demo_pipeline) -> None:
    retriever = demo_pipeline.retriever
    question = "What was the median overall survival with STRIDE?"
    assert "overall survival" in retriever.abbreviations.get("OS", set())  # defined in the built-in abstracts
    expanded = retriever.lexical_query(question)
    assert expanded.startswith(question) and expanded.split()[-1] == "OS"
    # What BM25 ranks is the expanded query, with no way for a caller to skip it ...
    got = [(p.chunk.id, p.score) for p in retriever.run(question, 10, RetrievalMode.BM25)]
    want = [(retriever.index.chunks[i].id, s) for i, s in retriever.index.lexical.search(expanded, 10)]
    assert got == want
    # ... unless the retriever is built without expansion (QA_EXPAND_ABBREVIATIONS=false).
    plain = Retriever(retriever.index, retriever.embedder, retriever.fusion, expand_abbreviations=False)
    assert plain.lexical_query(question) == question
    assert [p.chunk.id for p in plain.run(question, 10, RetrievalMode.BM25)] == [
        retriever.index.chunks[i].id for i, _ in retriever.index.lexical.search(question, 10)
    ]


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
