"""eval.bench.rescoring: the span-score variants and the study end to end on hand-made candidates files."""

from __future__ import annotations

import dataclasses
import json

import pytest

from eval.bench import rescoring
from eval.bench.rescoring import fits_answer_type
from eval.calibration import QuestionCandidates, write_candidates
from qa.answers import make_answer
from qa.question import AnswerType
from qa.ranking import combine_with_retrieval

TEXT = "The median overall survival was 16.4 months. Grade 3 events were seen in 25.8% of patients."


def cand(span: str, p: float, null: float = 0.0, question: str = "q", doc: str = "d"):
    start = TEXT.index(span)
    answer = make_answer(question, TEXT, doc, f"{doc}#0", 0, len(TEXT), start, start + len(span), "t", p)
    return dataclasses.replace(answer, details={"null_score": null})


def test_variants_weigh_the_span_by_its_windows_no_answer_score() -> None:
    assert rescoring.transform("base")(cand("16.4 months", 0.6, 0.3)) == 0.6
    assert rescoring.transform("ratio:1")(cand("16.4 months", 0.6, 0.3)) == pytest.approx(0.6 * 0.6 / 0.9)
    assert rescoring.transform("ratio:2")(cand("16.4 months", 0.0, 0.0)) == 0.0
    assert rescoring.transform("minus:0.5")(cand("16.4 months", 0.6, 0.3)) == pytest.approx(0.45)
    assert rescoring.transform("minus:1")(cand("16.4 months", 0.2, 0.9)) == 0.0
    with pytest.raises(ValueError, match="unknown variant 'null'; give base, ratio:G, minus:L or type:F"):
        rescoring.transform("null")


def test_type_variant_lowers_only_spans_of_the_wrong_form() -> None:
    f = rescoring.transform("type:0.25")
    assert f(cand("25.8%", 0.8, question="What percentage of patients had grade 3 events?")) == 0.8
    assert f(cand("16.4 months", 0.8, question="What percentage of patients had grade 3 events?")) == 0.2
    assert f(cand("16.4 months", 0.8, question="What was the median overall survival?")) == 0.8
    assert f(cand("Grade 3 events", 0.8, question="Which events were seen?")) == 0.8  # names are not checked


@pytest.mark.parametrize(
    ("answer_type", "text", "fits"),
    [
        (AnswerType.DOSE, "400 mg twice daily", True),
        (AnswerType.DOSE, "0.2 g", True),
        (AnswerType.DOSE, "154", False),
        (AnswerType.PERCENT, "57.3% (59/103)", True),
        (AnswerType.PERCENT, "59 patients", False),
        (AnswerType.DURATION, "16.43 months", True),
        (AnswerType.DURATION, "two years", True),
        (AnswerType.DURATION, "rapid", False),
        (AnswerType.YEAR, "in 2019", True),
        (AnswerType.COUNT, "1171", True),
        (AnswerType.COUNT, "the patients", False),
        (AnswerType.ENTITY, "sorafenib", True),
    ],
)
def test_fits_answer_type(answer_type: AnswerType, text: str, fits: bool) -> None:
    assert fits_answer_type(answer_type, text) is fits


def test_a_variant_moves_the_ranking_also_where_retrieval_is_mixed_in() -> None:
    """The interpolation with retrieval reads the reader score: a variant that changed only `score` would leave
    every setting with a retrieval weight above 0 as it was (the first version of this study did)."""
    q = "What percentage of patients had grade 3 events?"
    answers = [cand("16.4 months", 0.6, question=q, doc="d1"), cand("25.8%", 0.5, question=q, doc="d2")]
    ranks = {"d1": 1, "d2": 2}
    before = combine_with_retrieval(answers, ranks, 0.2)
    after = combine_with_retrieval(rescoring.rescored(answers, rescoring.transform("type:0")), ranks, 0.2)
    assert max(before, key=lambda a: a.score).text == "16.4 months"
    assert max(after, key=lambda a: a.score).text == "25.8%"


def test_the_study_finds_where_the_null_score_separates(tmp_path) -> None:
    """Two answerable questions with confident, correct spans and two unanswerable ones whose spans score as
    high but whose windows put much weight on no-answer: only a variant that reads the null score abstains on
    the unanswerable ones and answers the others."""
    sets = {
        "s": [
            QuestionCandidates("a1", ("16.4 months",), [cand("16.4 months", 0.5, 0.001)], {"d": 1}),
            QuestionCandidates("a2", ("25.8%",), [cand("25.8%", 0.5, 0.001)], {"d": 1}),
            QuestionCandidates("u1", (), [cand("16.4 months", 0.5, 0.45)], {"d": 1}),
            QuestionCandidates("u2", (), [cand("25.8%", 0.5, 0.45)], {"d": 1}),
        ]
    }
    path = tmp_path / "candidates.json.gz"
    write_candidates(path, sets, {"reader_model": "m", "weights_digest": "x"})
    out = tmp_path / "null.json"
    rescoring.main([str(path), "--variants", "base", "minus:1", "--out", str(out)])
    rows = {r["variant"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["base"]["mean_f1"] == 0.5  # one threshold for all: answer all four, or abstain on all four
    assert rows["minus:1"]["mean_f1"] == 1.0
    tops = json.loads(out.read_text())["top_candidates"]["s"]
    assert tops["unanswerable"] == {"questions": 2, "score": 0.5, "null_score": 0.45, "misfit_type": 0}
