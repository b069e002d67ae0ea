from __future__ import annotations

import pytest

from qa.answers import make_answer
from qa.ranking import rank_answers

TEXT = "Median OS was 16.4 months with A and 16.4 months with B; hazard ratio 0.78."


def ans(start: int, end: int, score: float, doc: str = "d"):
    return make_answer("q", TEXT, doc, f"{doc}#0", 0, len(TEXT), start, end, "test", score)


def test_dedup_by_text_and_overlap_then_threshold() -> None:
    a = ans(14, 25, 0.9)  # "16.4 months"
    same_text = ans(37, 48, 0.8)  # "16.4 months" again
    overlapping = ans(14, 18, 0.7)  # "16.4", inside the first span
    other = ans(70, 74, 0.5)  # "0.78"
    low = ans(0, 9, 0.1)
    ranked = rank_answers([low, other, overlapping, same_text, a], max_answers=5, min_score=0.2)
    assert [x.text for x in ranked] == ["16.4 months", "0.78"]
    assert rank_answers([a, other], max_answers=1, min_score=0.0) == [a]
    assert rank_answers([low], max_answers=3, min_score=0.2) == []


def test_same_text_in_other_document_is_one_answer() -> None:
    assert len(rank_answers([ans(14, 25, 0.9, "d1"), ans(14, 25, 0.8, "d2")], 5, 0.0)) == 1


def test_make_answer_keeps_both_spans_consistent() -> None:
    a = make_answer("q", TEXT, "d", "d#1", 10, 60, 14, 25, "t", 0.5)
    assert a.text == TEXT[a.start : a.end] == a.passage.text[a.span_in_passage.start : a.span_in_passage.end]


def test_retrieval_interpolation_uses_document_rank() -> None:
    from qa.ranking import combine_with_retrieval, document_ranks

    ranks = document_ranks(["d2", "d2", "d1"])
    assert ranks == {"d2": 1, "d1": 2}
    a1, a2, a3 = ans(14, 25, 0.6, "d1"), ans(70, 74, 0.5, "d2"), ans(0, 6, 0.9, "d9")
    combined = {a.doc_id: a.score for a in combine_with_retrieval([a1, a2, a3], ranks, 0.5)}
    assert combined["d1"] == pytest.approx(0.5 * 0.6 + 0.5 * (1 / 2))
    assert combined["d2"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert combined["d9"] == pytest.approx(0.5 * 0.9 + 0.5 * (1 / 3))  # not retrieved: last + 1
    assert combine_with_retrieval([a1], ranks, 0.0) == [a1]
