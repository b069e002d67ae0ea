"""SQuAD answer metrics, as the official SQuAD v2.0 script computes them (its normalisation is v1.1's), so EM/F1
compare with published numbers. One implementation for the whole project: training's dev checks (`qa.training`)
and the harness (`eval`) both score with it.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace (SQuAD's rule)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _gold_or_empty(golds: Sequence[str]) -> list[str]:
    """As SQuAD v2.0: gold answers that normalise to nothing are dropped; none left means 'no answer'."""
    kept = [g for g in golds if normalize_answer(g)]
    return kept or [""]


def _f1_one(prediction: str, gold: str) -> float:
    pred_toks = normalize_answer(prediction).split()
    gold_toks = normalize_answer(gold).split()
    if not pred_toks or not gold_toks:
        return float(pred_toks == gold_toks)
    same = sum((Counter(pred_toks) & Counter(gold_toks)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_toks)
    recall = same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """Best over the gold answers; `None` (abstained) is the empty answer, right only for unanswerable gold."""
    pred = normalize_answer(prediction or "")
    return max(float(pred == normalize_answer(g)) for g in _gold_or_empty(golds))


def f1_score(prediction: str | None, golds: Sequence[str]) -> float:
    """Token-overlap F1, best over the gold answers, with SQuAD v2.0's rule for empty answers."""
    return max(_f1_one(prediction or "", g) for g in _gold_or_empty(golds))
