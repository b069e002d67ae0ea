"""Score mixing of the combined reader, on hand-made candidates."""

from __future__ import annotations

import pytest

from qa.answers import make_answer
from qa.ranking import combine_with_retrieval
from qa.readers.combined import CombinedReader, combine_candidates

TEXT = "OS was 16.4 months with STRIDE. Grade 3 events occurred in 25.8% of patients."


def cand(span: str, score: float, reader: str, doc: str = "d"):
    start = TEXT.index(span)
    return make_answer("q", TEXT, doc, f"{doc}#0", 0, len(TEXT), start, start + len(span), reader, score)


def test_agreement_adds_up_and_a_lone_span_keeps_its_readers_share() -> None:
    trained = [cand("16.4 months", 0.6, "transformers"), cand("25.8%", 0.3, "transformers")]
    heuristic = [cand("16.4 months with STRIDE", 0.8, "heuristic"), cand("Grade 3", 0.5, "heuristic")]
    out = {a.text: a for a in combine_candidates(trained, heuristic, 0.25)}
    # "16.4 months" overlaps the heuristic's "16.4 months with STRIDE": 0.75 * 0.6 + 0.25 * 0.8
    assert out["16.4 months"].score == pytest.approx(0.75 * 0.6 + 0.25 * 0.8)
    assert out["16.4 months with STRIDE"].score == pytest.approx(0.75 * 0.6 + 0.25 * 0.8)
    assert out["25.8%"].score == pytest.approx(0.75 * 0.3)  # the heuristic proposed nothing there
    assert out["Grade 3"].score == pytest.approx(0.25 * 0.5)
    assert out["Grade 3"].details["trained"] == 0.0 and out["Grade 3"].details["heuristic"] == 0.5
    ranked = combine_candidates(trained, heuristic, 0.25, max_answers=2)
    assert [a.score for a in ranked] == sorted((a.score for a in out.values()), reverse=True)[:2]


def test_weights_zero_and_one_are_each_reader_alone() -> None:
    trained = [cand("16.4 months", 0.6, "transformers")]
    heuristic = [cand("25.8%", 0.9, "heuristic")]
    alone = {a.text: a.score for a in combine_candidates(trained, heuristic, 0.0)}
    assert alone == {"16.4 months": 0.6, "25.8%": 0.0}
    assert {a.text: a.score for a in combine_candidates(trained, heuristic, 1.0)} == {"16.4 months": 0.0, "25.8%": 0.9}
    other_doc = [cand("16.4 months", 0.9, "heuristic", doc="e")]
    assert combine_candidates(trained, other_doc, 0.5)[0].score == pytest.approx(0.45)  # other document: no agreement


def test_the_mix_is_the_reader_score_that_the_retrieval_interpolation_reads() -> None:
    """With a retrieval weight above 0 the final score interpolates `reader_score`: it must be the mix, not the
    proposing reader's own score (the heuristic's 0.9 here would outrank the span both readers agree on)."""
    trained = [cand("16.4 months", 0.6, "transformers"), cand("Grade 3", 0.1, "transformers")]
    heuristic = [cand("16.4 months", 0.7, "heuristic"), cand("25.8%", 0.9, "heuristic")]
    mixed = combine_candidates(trained, heuristic, 0.25)
    assert all(a.reader_score == a.score for a in mixed)
    final = combine_with_retrieval(mixed, {"d": 1}, 0.2)
    best = max(final, key=lambda a: a.score)
    assert best.text == "16.4 months"
    assert best.score == pytest.approx(0.8 * (0.75 * 0.6 + 0.25 * 0.7) + 0.2 * 1.0)


class Fixed:
    def __init__(self, answers, min_score=0.4, retrieval_weight=0.1, calibration=None):
        self.answers, self.min_score, self.retrieval_weight, self.calibration = (
            answers,
            min_score,
            retrieval_weight,
            calibration,
        )
        self.coverage_exponent = 1.0
        self.secondary_ratio = 0.5

    def warm_up(self) -> None: ...

    def run(self, question, passages, documents, max_answers=5):
        return self.answers[:max_answers]


def test_combined_reader_takes_its_calibration_from_the_trained_models_folder() -> None:
    trained = Fixed([cand("16.4 months", 0.6, "transformers")])
    heuristic = Fixed([cand("16.4 months", 0.8, "heuristic")])
    reader = CombinedReader(trained, heuristic)
    reader.warm_up()
    assert (reader.heuristic_weight, reader.min_score, reader.retrieval_weight) == (0.0, 0.4, 0.1)
    assert reader.coverage_exponent == 1.0 and reader.secondary_ratio == 0.5  # the trained reader's
    trained.calibration = {
        "combined": {
            "heuristic_weight": 0.3,
            "min_answer_score": 0.2,
            "retrieval_weight": 0.0,
            "coverage_exponent": 2,
            "secondary_ratio": 0.9,
        }
    }
    reader.warm_up()
    assert (reader.heuristic_weight, reader.min_score, reader.retrieval_weight) == (0.3, 0.2, 0.0)
    assert reader.coverage_exponent == 2.0 and reader.secondary_ratio == 0.9
    [answer] = reader.run("q", [], {}, max_answers=3)
    assert answer.score == pytest.approx(0.7 * 0.6 + 0.3 * 0.8)
