"""Metrics against hand-computed cases: SQuAD normalisation and scoring, abstention, trec_eval measures."""

from __future__ import annotations

import math
import random

import pytest

from eval.metrics import (
    latency_summary,
    mean,
    no_answer_scores,
    rank_scores,
    retrieval_scores,
)
from qa.metrics import exact_match, f1_score, normalize_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat", "cat"),
        ("an apple, a pear and the plum.", "apple pear and plum"),
        ("theory and anatomy", "theory and anatomy"),  # articles only as whole words
        ("  16.43   months ", "1643 months"),  # punctuation is deleted, not replaced by a space
        ("T-cell (CD8+)", "tcell cd8"),
        ("A", ""),
        ("“quoted” text", "“quoted” text"),  # only ASCII punctuation, as the official script
        ("Ångström", "ångström"),
    ],
)
def test_normalize_answer_matches_the_official_rules(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_punctuation_and_articles() -> None:
    assert exact_match("the REFLECT trial.", ["REFLECT trial"]) == 1.0
    assert exact_match("REFLECT", ["REFLECT trial"]) == 0.0


def test_exact_match_takes_the_best_gold_answer() -> None:
    assert exact_match("300 mg", ["300 mg, one dose", "300 mg"]) == 1.0
    assert exact_match("one dose", ["300 mg, one dose", "300 mg"]) == 0.0


def test_unanswerable_gold_rewards_abstention_only() -> None:
    assert exact_match(None, []) == 1.0
    assert f1_score(None, []) == 1.0
    assert exact_match("", []) == 1.0
    assert exact_match("sorafenib", []) == 0.0
    assert f1_score("sorafenib", []) == 0.0
    # A prediction that normalises to nothing is an abstention in SQuAD v2.0's eyes.
    assert exact_match("The", []) == 1.0


def test_abstaining_on_an_answerable_question_scores_zero() -> None:
    assert exact_match(None, ["44%"]) == 0.0
    assert f1_score(None, ["44%"]) == 0.0


def test_gold_answers_that_normalise_to_nothing_are_dropped() -> None:
    # SQuAD v2.0: ["the", "cat"] is scored as ["cat"]; ["a"] alone means "no answer".
    assert exact_match("", ["the", "cat"]) == 0.0
    assert exact_match("cat", ["the", "cat"]) == 1.0
    assert exact_match(None, ["a"]) == 1.0


def test_f1_hand_computed() -> None:
    # prediction tokens: median overall survival was 1643 months (6); gold: 1643 months (2); overlap 2
    # precision 2/6, recall 2/2 -> F1 = 2 * (1/3) * 1 / (1/3 + 1) = 0.5
    assert f1_score("The median overall survival was 16.43 months", ["16.43 months"]) == pytest.approx(0.5)
    # repeated tokens count once per occurrence: x x y vs x y y -> overlap 2, P = R = 2/3
    assert f1_score("x x y", ["x y y"]) == pytest.approx(2 / 3)
    assert f1_score("nothing shared", ["16.43 months"]) == 0.0


def test_f1_takes_the_best_gold_answer() -> None:
    # vs "300 mg, one dose": 2/2 precision, 2/4 recall -> 2/3; vs "300 mg": exact -> 1
    assert f1_score("300 mg", ["300 mg, one dose", "300 mg"]) == 1.0
    assert f1_score("300 mg", ["300 mg, one dose"]) == pytest.approx(2 / 3)


def test_no_answer_precision_and_recall() -> None:
    # (abstained, unanswerable): 2 abstentions, 1 of them right; 2 unanswerable, 1 abstained on
    scores = no_answer_scores([(True, True), (True, False), (False, True), (False, False)])
    assert (scores.n, scores.abstained, scores.correct) == (2, 2, 1)
    assert scores.precision == 0.5
    assert scores.recall == 0.5


def test_no_answer_scores_are_null_without_a_denominator() -> None:
    never_abstains = no_answer_scores([(False, True), (False, False)])
    assert never_abstains.precision is None
    assert never_abstains.recall == 0.0
    all_answerable = no_answer_scores([(True, False)])
    assert all_answerable.recall is None
    assert all_answerable.precision == 0.0


def test_mean_is_exact_and_null_when_empty() -> None:
    assert mean([0.1] * 10) == 0.1
    assert mean([]) is None


def test_latency_percentiles_interpolate_linearly() -> None:
    assert latency_summary([4.0, 1.0, 3.0, 2.0]) == {"p50": 2.5, "p95": pytest.approx(3.85)}
    assert latency_summary([]) == {"p50": None, "p95": None}


def test_single_relevant_document_at_rank_three() -> None:
    s = retrieval_scores({"q": {"gold": 1}}, {"q": ["a", "b", "gold", "c"]})["q"]
    assert s["recall@1"] == 0.0
    assert s["recall@5"] == 1.0
    assert s["recall@10"] == 1.0
    assert s["mrr@10"] == pytest.approx(1 / 3)
    assert s["ndcg@10"] == pytest.approx(1 / math.log2(4))


def test_graded_relevance_uses_linear_gains() -> None:
    # ranking x(0) a(2) b(1): DCG = 2/log2(3) + 1/log2(4); ideal = 2/log2(2) + 1/log2(3)
    s = retrieval_scores({"q": {"a": 2, "b": 1, "x": 0}}, {"q": ["x", "a", "b"]})["q"]
    assert s["ndcg@10"] == pytest.approx((2 / math.log2(3) + 0.5) / (2 + 1 / math.log2(3)))
    assert s["recall@1"] == 0.0
    assert s["recall@5"] == 1.0
    assert s["mrr@10"] == 0.5


def test_recall_counts_a_share_of_several_relevant_documents() -> None:
    s = retrieval_scores({"q": {"a": 1, "b": 1}}, {"q": ["a", "x", "y", "z", "w", "v", "b"]})["q"]
    assert s["recall@1"] == 0.5
    assert s["recall@5"] == 0.5
    assert s["recall@10"] == 1.0


def test_rankings_are_cut_at_ten_documents() -> None:
    ranking = [f"d{i}" for i in range(1, 11)] + ["gold"]
    s = retrieval_scores({"q": {"gold": 1}}, {"q": ranking})["q"]
    assert s == {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}


def test_rank_order_is_kept_whatever_the_document_ids() -> None:
    # trec_eval breaks score ties by document id; "z" ranked first must stay first.
    assert retrieval_scores({"q": {"z": 1}}, {"q": ["z", "a"]})["q"]["mrr@10"] == 1.0
    assert retrieval_scores({"q": {"a": 1}}, {"q": ["z", "a"]})["q"]["mrr@10"] == 0.5
    assert list(rank_scores(["z", "a", "m"]).values()) == [3.0, 2.0, 1.0]


def test_a_query_with_nothing_retrieved_scores_zero_instead_of_vanishing() -> None:
    scores = retrieval_scores({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": ["a"], "q2": []})
    assert set(scores) == {"q1", "q2"}
    assert scores["q2"]["recall@10"] == 0.0
    assert scores["q1"]["recall@1"] == 1.0


def test_unjudged_queries_are_left_out() -> None:
    assert retrieval_scores({"q1": {"a": 1}, "q2": {}}, {"q1": ["a"], "q2": ["a"]}).keys() == {"q1"}


def _reference(relevant: dict[str, int], ranking: list[str]) -> dict[str, float]:
    """Textbook definitions, written independently of pytrec_eval."""
    top = ranking[:10]
    rel = {d for d, g in relevant.items() if g > 0}
    first = next((i for i, d in enumerate(top, start=1) if d in rel), None)
    dcg = sum(relevant.get(d, 0) / math.log2(i + 1) for i, d in enumerate(top, start=1))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return {
        **{f"recall@{k}": len(rel & set(top[:k])) / len(rel) for k in (1, 5, 10)},
        "mrr@10": 1 / first if first else 0.0,
        "ndcg@10": dcg / idcg,
    }


def test_pytrec_eval_agrees_with_the_textbook_definitions_on_random_cases() -> None:
    rng = random.Random(7)
    docs = [f"d{i:02d}" for i in range(30)]
    qrels, runs = {}, {}
    for q in range(50):
        judged = rng.sample(docs, rng.randint(1, 6))
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        qrels[f"q{q}"][judged[0]] = rng.randint(1, 3)  # at least one relevant document
        runs[f"q{q}"] = rng.sample(docs, rng.randint(1, 15))
    scores = retrieval_scores(qrels, runs)
    for q in qrels:
        expected = _reference(qrels[q], runs[q])
        for metric, value in expected.items():
            assert scores[q][metric] == pytest.approx(value), (q, metric)
