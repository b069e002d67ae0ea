from __future__ import annotations

import pytest

from qa.metrics import exact_match, f1_score, normalize_answer


def test_squad_normalisation_exact_match_and_f1() -> None:
    assert normalize_answer("The  Median, survival!") == "median survival"
    assert exact_match("the 16.4 months", ["16.4 months."]) == 1.0
    assert f1_score("16.4 months overall", ["16.4 months"]) == pytest.approx(0.8)
    assert f1_score("nothing alike", ["16.4 months"]) == 0.0
    assert f1_score("a", ["x"]) == 0.0


def test_abstention_is_right_only_for_unanswerable_gold() -> None:
    assert exact_match(None, []) == 1.0 and f1_score(None, [""]) == 1.0
    assert exact_match(None, ["16.4 months"]) == 0.0 and f1_score("16.4 months", []) == 0.0
