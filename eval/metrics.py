"""Abstention, retrieval and latency metrics (answer EM/F1 are `qa.metrics`', shared with training).

Retrieval metrics come from pytrec_eval (trec_eval's own code), not from a re-implementation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RETRIEVAL_DEPTH = 10
# Our metric name -> pytrec_eval measure key. recip_rank is cut at 10 by truncating each run to 10 documents.
RETRIEVAL_MEASURES: dict[str, str] = {
    "recall@1": "recall_1",
    "recall@5": "recall_5",
    "recall@10": "recall_10",
    "mrr@10": "recip_rank",
    "ndcg@10": "ndcg_cut_10",
}
_PYTREC_MEASURES = {"recall.1,5,10", "recip_rank", "ndcg_cut.10"}


def mean(values: Iterable[float]) -> float | None:
    """Exactly rounded mean; None for no values (a metric with no question to measure it on)."""
    vals = list(values)
    return math.fsum(vals) / len(vals) if vals else None


@dataclass(frozen=True, slots=True)
class NoAnswerScores:
    n: int  # unanswerable questions
    abstained: int  # questions where the system gave no answer
    correct: int  # abstentions on unanswerable questions
    precision: float | None
    recall: float | None


def no_answer_scores(pairs: Iterable[tuple[bool, bool]]) -> NoAnswerScores:
    """From (abstained, unanswerable) pairs: precision = correct / abstained, recall = correct / unanswerable."""
    items = list(pairs)
    n = sum(1 for _, unanswerable in items if unanswerable)
    abstained = sum(1 for a, _ in items if a)
    correct = sum(1 for a, unanswerable in items if a and unanswerable)
    return NoAnswerScores(
        n=n,
        abstained=abstained,
        correct=correct,
        precision=correct / abstained if abstained else None,
        recall=correct / n if n else None,
    )


def rank_scores(doc_ids: Sequence[str]) -> dict[str, float]:
    """Strictly decreasing scores by rank: trec_eval sorts by score and breaks ties its own way, not ours."""
    n = len(doc_ids)
    return {doc_id: float(n - i) for i, doc_id in enumerate(doc_ids)}


def retrieval_scores(
    qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Per-query recall@1/5/10, MRR@10 and nDCG@10 of ranked document ids against graded judgements.

    Every judged query gets a row: one with nothing retrieved scores 0 (trec_eval would silently skip it and
    so inflate the mean). Each ranking is cut to its first 10 documents, which makes recip_rank MRR@10.
    """
    import pytrec_eval

    judged = {q: dict(rels) for q, rels in qrels.items() if rels}
    runs = {
        q: rank_scores(list(dict.fromkeys(rankings.get(q, [])))[:RETRIEVAL_DEPTH]) for q in judged if rankings.get(q)
    }
    evaluated = pytrec_eval.RelevanceEvaluator(judged, _PYTREC_MEASURES).evaluate(runs) if runs else {}
    zeros = dict.fromkeys(RETRIEVAL_MEASURES, 0.0)
    return {
        q: {ours: float(evaluated[q][theirs]) for ours, theirs in RETRIEVAL_MEASURES.items()}
        if q in evaluated
        else dict(zeros)
        for q in judged
    }


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 with linear interpolation between order statistics (numpy's default)."""
    if not latencies_ms:
        return {"p50": None, "p95": None}
    arr = np.asarray(latencies_ms, dtype=np.float64)
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95))}
