"""The calibration sweep replays the pipeline's final step on hand-made candidates."""

from __future__ import annotations

import pytest

from eval.calibration import (
    QuestionCandidates,
    best,
    best_secondary,
    decide,
    listed,
    load_candidates,
    score,
    secondary_sweep,
    sweep,
    weights_digest,
    write_candidates,
)
from qa.answers import make_answer
from qa.ranking import combine_with_retrieval, rank_answers

TEXT = "The median overall survival was 16.4 months. Grade 3 events were seen in 25.8% of patients."


def cand(span: str, p: float, doc: str = "d"):
    start = TEXT.index(span)
    return make_answer("q", TEXT, doc, f"{doc}#0", 0, len(TEXT), start, start + len(span), "t", p)


def question(golds, *cands, ranks=None) -> QuestionCandidates:
    return QuestionCandidates("q", tuple(golds), list(cands), ranks or {"d": 1, "e": 2})


def test_decide_is_the_pipelines_combine_then_rank() -> None:
    q = question(["16.4 months"], cand("16.4 months", 0.6, "e"), cand("25.8%", 0.5, "d"))
    assert decide(q, 0.0, 0.0).text == "16.4 months"
    # with weight 0.5 the first-ranked document wins: 0.5*0.5 + 0.5*1 = 0.75 > 0.5*0.6 + 0.5*0.5 = 0.55
    assert decide(q, 0.5, 0.0).text == "25.8%"
    expected = rank_answers(combine_with_retrieval(q.candidates, q.doc_ranks, 0.5), 1, 0.7)
    assert [decide(q, 0.5, 0.7)] == expected
    assert decide(q, 0.5, 0.8) is None  # nothing clears the threshold: abstain
    assert decide(question([]), 0.0, 0.0) is None


def test_score_counts_abstention_as_squad_2_does() -> None:
    answerable = question(["16.4 months"], cand("16.4 months", 0.9))
    wrong = question(["25.8%"], cand("16.4 months", 0.4))
    unanswerable = question([], cand("25.8%", 0.3))
    s = score([answerable, wrong, unanswerable], 0.0, 0.35)
    assert s["questions"] == 3 and s["answerable"] == 2 and s["unanswerable"] == 1
    assert s["em"] == pytest.approx(2 / 3, abs=1e-4)  # right answer + right abstention
    assert s["has_answer_em"] == 0.5 and s["no_answer_recall"] == 1.0 and s["no_answer_precision"] == 1.0
    assert s["answered_unanswerable"] == 0.0
    s = score([answerable, wrong, unanswerable], 0.0, 0.0)
    assert s["em"] == pytest.approx(1 / 3, abs=1e-4) and s["answered_unanswerable"] == 1.0 and s["abstained"] == 0
    s = score([answerable, wrong, unanswerable], 0.0, 0.5)  # abstains on the wrong one too
    assert s["no_answer_precision"] == 0.5 and s["has_answer_f1"] == 0.5


def test_sweep_averages_sets_equally_and_best_prefers_abstaining_on_ties() -> None:
    sets = {
        "a": [question(["16.4 months"], cand("16.4 months", 0.9))],
        "b": [question([], cand("25.8%", 0.3))],
    }
    rows = sweep(sets, [0.0], [0.0, 0.2, 0.5, 0.8])
    by_t = {r["threshold"]: r["mean_f1"] for r in rows}
    assert by_t == {0.0: 0.5, 0.2: 0.5, 0.5: 1.0, 0.8: 1.0}
    chosen = best(rows)
    assert chosen["threshold"] == 0.8 and chosen["sets"]["b"]["no_answer_recall"] == 1.0


def test_wrong_answers_are_counted_and_a_cost_for_them_moves_the_choice_to_abstaining() -> None:
    right = question(["16.4 months"], cand("16.4 months", 0.9))
    wrong = question(["25.8%"], cand("16.4 months", 0.6))  # F1 0 at any threshold it is answered
    partial = question(["16.4"], cand("16.4 months", 0.6))  # F1 > 0: earns its F1, never counted wrong
    unanswerable = question([], cand("25.8%", 0.6))
    s = score([right, wrong, partial, unanswerable], 0.0, 0.5)
    assert s["wrong"] == 2  # the F1-0 answer and the answer to the unanswerable question
    assert s["utility"] == s["f1"]  # the default cost is 0: plain SQuAD 2.0 F1
    sets = {"a": [right, wrong, partial]}
    free, costly = sweep(sets, [0.0], [0.5, 0.7]), sweep(sets, [0.0], [0.5, 0.7], wrong_answer_cost=1.0)
    f1_partial = 2 / 3  # "16.4 months" against "16.4": precision 1/2, recall 1
    by_t = {r["threshold"]: r for r in costly}
    assert by_t[0.5]["mean_utility"] == pytest.approx((1 - 1 + f1_partial) / 3, abs=1e-4)
    assert by_t[0.7]["mean_utility"] == pytest.approx(1 / 3, abs=1e-4) and by_t[0.7]["sets"]["a"]["wrong"] == 0
    assert best(free)["threshold"] == 0.5  # F1 alone: the partial answer earns more than the wrong one costs (0)
    assert best(costly)["threshold"] == 0.7  # charging for the wrong one turns the choice to abstaining


def test_the_command_line_default_cost_is_the_library_constant() -> None:
    import inspect

    from eval.calibrate_cli import calibrate_command
    from eval.calibration import WRONG_ANSWER_COST

    default = inspect.signature(calibrate_command).parameters["wrong_answer_cost"].default
    assert default == WRONG_ANSWER_COST


def test_coverage_exponent_replays_the_pipelines_weighing() -> None:
    """A confident answer from a document that lacks the question's rarest term is abstained on once coverage
    counts; the answer from a covering document survives; exponent 0 is the reader alone."""
    unanswerable = QuestionCandidates("u", (), [cand("16.4 months", 0.8, "d")], {"d": 1}, doc_coverage={"d": 0.3})
    answerable = QuestionCandidates(
        "a", ("16.4 months",), [cand("16.4 months", 0.8, "e")], {"e": 1}, doc_coverage={"e": 0.95}
    )
    assert decide(unanswerable, 0.0, 0.5) is not None  # the reader alone answers it
    assert decide(unanswerable, 0.0, 0.5, coverage_exponent=2.0) is None  # 0.8 * 0.09 < 0.5
    kept = decide(answerable, 0.0, 0.5, coverage_exponent=2.0)
    assert kept is not None and kept.score == pytest.approx(0.8 * 0.95**2) and kept.details["coverage"] == 0.95
    rows = sweep({"u": [unanswerable], "a": [answerable]}, [0.0], [0.5], coverage_exponents=(0.0, 2.0))
    assert {r["coverage_exponent"]: r["mean_f1"] for r in rows} == {0.0: 0.5, 2.0: 1.0}
    assert best(rows)["coverage_exponent"] == 2.0


def test_secondary_sweep_keeps_the_top_answer_and_scores_what_is_listed() -> None:
    """A runner-up that is wrong costs the listing half of that question; one that is right (the top answer being
    wrong) earns half; the chosen ratio is the best mean over sets, ties to the higher ratio."""
    wrong_runner_up = question(["16.4 months"], cand("16.4 months", 0.8), cand("25.8%", 0.3))
    right_runner_up = question(["25.8%"], cand("16.4 months", 0.6), cand("25.8%", 0.5))
    unanswerable = question([], cand("25.8%", 0.1))
    sets = {"a": [wrong_runner_up], "b": [right_runner_up], "c": [unanswerable]}
    row = {"heuristic_weight": None, "coverage_exponent": 0.0, "retrieval_weight": 0.0, "threshold": 0.2}
    assert [a.text for a in listed(wrong_runner_up, row, 3, 0.0)] == ["16.4 months", "25.8%"]
    assert [a.text for a in listed(wrong_runner_up, row, 3, 0.5)] == ["16.4 months"]
    rows = {r["secondary_ratio"]: r for r in secondary_sweep(sets, row, [0.0, 0.5, 0.9], 3)}
    assert rows[0.0]["sets"]["a"]["list_f1"] == 0.5 and rows[0.0]["sets"]["b"]["list_f1"] == 0.5
    assert rows[0.5]["sets"]["a"]["list_f1"] == 1.0 and rows[0.5]["sets"]["b"]["list_f1"] == 0.5
    assert rows[0.9]["sets"]["b"]["list_f1"] == 0.0 and rows[0.9]["sets"]["b"]["secondary_listed"] == 0
    assert rows[0.0]["sets"]["a"]["secondary_f1"] == 0.0 and rows[0.0]["sets"]["b"]["secondary_f1"] == 1.0
    assert all(r["sets"]["c"]["list_f1"] == 1.0 for r in rows.values())  # abstained at the threshold throughout
    assert rows[0.5]["mean_list_f1"] == pytest.approx((1.0 + 0.5 + 1.0) / 3, abs=1e-4)
    assert best_secondary(list(rows.values()))["secondary_ratio"] == 0.5
    tie = [{"secondary_ratio": 0.6, "mean_list_f1": 0.8}, {"secondary_ratio": 0.8, "mean_list_f1": 0.8}]
    assert best_secondary(tie)["secondary_ratio"] == 0.8


def test_a_candidates_file_reads_back_every_field_and_sweeps_the_same(tmp_path) -> None:
    sets = {
        "a": [
            QuestionCandidates(
                "q1",
                ("16.4 months",),
                [cand("16.4 months", 0.8, "e"), cand("25.8%", 0.3, "d")],
                {"e": 1, "d": 2},
                heuristic=[cand("25.8%", 0.9, "d")],
                n_candidates=8,
                doc_coverage={"e": 0.95, "d": 0.4},
            )
        ],
        "b": [question([], cand("25.8%", 0.35))],
    }
    path = tmp_path / "candidates.json.gz"
    write_candidates(path, sets, {"reader": "transformers"})
    loaded, meta = load_candidates(path)
    assert meta == {"reader": "transformers"}
    assert loaded == sets  # every answer field, details and coverage included
    grid = ([0.0, 0.5], [0.0, 0.3, 0.6], (None, 0.5), (0.0, 2.0))
    assert sweep(loaded, *grid) == sweep(sets, *grid)


def test_a_file_that_is_not_candidates_is_refused_naming_it(tmp_path) -> None:
    for name, content in (("plain.json", b"{}"), ("empty.gz", b"")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=name):
            load_candidates(path)
    path = tmp_path / "other.json.gz"
    write_candidates(path, {}, {})
    assert load_candidates(path) == ({}, {})


def test_weights_digest_follows_the_weights_not_the_calibration(tmp_path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    before = weights_digest(tmp_path)
    (tmp_path / "calibration.json").write_text("{}")
    assert weights_digest(tmp_path) == before
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert weights_digest(tmp_path) != before
    assert weights_digest("some/hub-id") is None
