from __future__ import annotations

import random

import pytest

from qa.answers import make_answer
from qa.coverage import weigh_by_coverage
from qa.ranking import combine_with_retrieval, rank_answers, reachable

TEXT = "Median OS was 16.4 months with A and 16.4 months with placebo. The hazard ratio was 0.78."


def ans(start: int, end: int, score: float, doc: str = "d"):
    return make_answer("q", TEXT, doc, f"{doc}#0", 0, len(TEXT), start, end, "test", score)


def test_dedup_by_text_and_overlap_then_threshold() -> None:
    a = ans(14, 25, 0.9)  # "16.4 months"
    same_text = ans(37, 48, 0.8)  # "16.4 months" again
    overlapping = ans(14, 18, 0.7)  # "16.4", inside the first span
    other = ans(TEXT.index("0.78"), TEXT.index("0.78") + 4, 0.5)  # "0.78", in the next sentence
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
    a1, a2, a3 = (
        ans(14, 25, 0.6, "d1"),
        ans(TEXT.index("0.78"), TEXT.index("0.78") + 4, 0.5, "d2"),
        ans(0, 6, 0.9, "d9"),
    )
    combined = {a.doc_id: a.score for a in combine_with_retrieval([a1, a2, a3], ranks, 0.5)}
    assert combined["d1"] == pytest.approx(0.5 * 0.6 + 0.5 * (1 / 2))
    assert combined["d2"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert combined["d9"] == pytest.approx(0.5 * 0.9 + 0.5 * (1 / 3))  # not retrieved: last + 1
    assert combine_with_retrieval([a1], ranks, 0.0) == [a1]


def test_other_values_of_the_best_answers_sentence_are_not_listed() -> None:
    text = "OS was 16.4 months with STRIDE and 13.8 months with sorafenib. Grade 3 events occurred in 25.8%."
    doc_answers = {
        "16.4 months": 0.9,
        "13.8 months": 0.8,  # the other arm of the same sentence
        "25.8%": 0.4,  # another sentence: a separate fact
    }

    def at(span: str, score: float, chunk_start: int = 0):
        start = text.index(span)
        return make_answer(
            "q", text, "d", f"d#{chunk_start}", chunk_start, len(text), start, start + len(span), "t", score
        )

    ranked = rank_answers([at(s, p) for s, p in doc_answers.items()], max_answers=5, min_score=0.0)
    assert [a.text for a in ranked] == ["16.4 months", "25.8%"]
    # the same sentence read through an overlapping chunk that starts at it is still the same sentence
    second = text.index("Grade")
    ranked = rank_answers([at("25.8%", 0.9, second), at("16.4 months", 0.5)], max_answers=5, min_score=0.0)
    assert [a.text for a in ranked] == ["25.8%", "16.4 months"]
    other_doc = make_answer("q", text, "e", "e#0", 0, len(text), 35, 46, "t", 0.7)
    assert [a.text for a in rank_answers([at("16.4 months", 0.9), other_doc], 5, 0.0)] == [
        "16.4 months",
        "13.8 months",
    ]  # another document's sentence is its own evidence


def test_secondary_ratio_cuts_answers_far_below_the_best() -> None:
    text = "Median OS was 16.4 months. The hazard ratio was 0.78. Grade 3 events occurred in 25.8%."

    def at(span: str, score: float):
        start = text.index(span)
        return make_answer("q", text, "d", "d#0", 0, len(text), start, start + len(span), "t", score)

    best, close, far = at("16.4 months", 0.8), at("0.78", 0.7), at("25.8%", 0.3)  # 0.875 and 0.375 of the best
    assert [a.text for a in rank_answers([far, close, best], 5, 0.0)] == ["16.4 months", "0.78", "25.8%"]
    assert [a.text for a in rank_answers([far, close, best], 5, 0.0, secondary_ratio=0.5)] == ["16.4 months", "0.78"]
    assert [a.text for a in rank_answers([far, close, best], 5, 0.0, secondary_ratio=0.9)] == ["16.4 months"]
    # the best answer itself is never cut by the ratio, only by the threshold
    assert rank_answers([best], 5, 0.0, secondary_ratio=1.0) == [best]
    assert rank_answers([best], 5, 0.9, secondary_ratio=0.0) == []


def test_reachable_bounds_every_answer_the_pipeline_could_list() -> None:
    """No answer of a reader score <= 1 from a left-out document reaches the threshold; at reader score 1 the
    bound is the answer's own final score, computed by the pipeline's own functions."""
    rng = random.Random(5)
    for _ in range(300):
        doc_ids = [f"d{i}" for i in range(rng.randint(1, 6))]
        ranks = {d: i + 1 for i, d in enumerate(doc_ids) if rng.random() < 0.9}
        coverage = {d: rng.random() for d in doc_ids if rng.random() < 0.9}
        exponent, weight, threshold = rng.choice([0.0, 1.0, 4.0]), rng.choice([0.0, 0.2, 0.5]), rng.random()
        keep = reachable(doc_ids, ranks, coverage, exponent, weight, threshold)
        for top in (True, False):
            answers = [ans(14, 25, 1.0 if top else rng.random(), d) for d in doc_ids]
            final = combine_with_retrieval(weigh_by_coverage(answers, coverage, exponent), ranks, weight)
            for a in final:
                if top:
                    assert (a.score >= threshold) == (a.doc_id in keep)
                elif a.score >= threshold:
                    assert a.doc_id in keep
