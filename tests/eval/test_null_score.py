"""eval.bench.null_score: the span-score variants and the study end to end on a hand-made candidates file."""

from __future__ import annotations

import dataclasses
import json

import pytest

from eval.bench import null_score
from eval.calibration import QuestionCandidates, write_candidates
from qa.answers import make_answer

TEXT = "The median overall survival was 16.4 months. Grade 3 events were seen in 25.8% of patients."


def cand(span: str, p: float, null: float):
    start = TEXT.index(span)
    answer = make_answer("q", TEXT, "d", "d#0", 0, len(TEXT), start, start + len(span), "t", p)
    return dataclasses.replace(answer, details={"null_score": null})


def test_variants_weigh_the_span_by_its_windows_no_answer_score() -> None:
    assert null_score.transform("base")(0.6, 0.3) == 0.6
    assert null_score.transform("ratio:1")(0.6, 0.3) == pytest.approx(0.6 * 0.6 / 0.9)
    assert null_score.transform("ratio:2")(0.0, 0.0) == 0.0
    assert null_score.transform("minus:0.5")(0.6, 0.3) == pytest.approx(0.45)
    assert null_score.transform("minus:1")(0.2, 0.9) == 0.0
    with pytest.raises(ValueError, match="unknown variant 'null'; give base, ratio:G or minus:L"):
        null_score.transform("null")


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
    null_score.main([str(path), "--variants", "base", "minus:1", "--out", str(out)])
    rows = {r["variant"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["base"]["mean_f1"] == 0.5  # one threshold for all: answer all four, or abstain on all four
    assert rows["minus:1"]["mean_f1"] == 1.0
    tops = json.loads(out.read_text())["top_candidates"]["s"]
    assert tops["unanswerable"] == {"questions": 2, "score": 0.5, "null_score": 0.45}
