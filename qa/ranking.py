"""Deduplicate, rank and abstain: shared by every reader so they differ only in how they read."""

from __future__ import annotations

import re
from collections.abc import Iterable

from qa.answers import Answer

_NORM = re.compile(r"\W+")


def answer_key(answer: Answer) -> str:
    return _NORM.sub(" ", answer.text.lower()).strip()


def rank_answers(answers: Iterable[Answer], max_answers: int, min_score: float) -> list[Answer]:
    """Best first; one answer per normalised text (the same fact from overlapping chunks or documents) and
    one per overlapping document span; nothing under `min_score`."""
    ordered = sorted(answers, key=lambda a: (-a.score, a.doc_id, a.start, a.end))
    kept: list[Answer] = []
    seen_text: set[str] = set()
    for ans in ordered:
        if ans.score < min_score:
            break
        key = answer_key(ans)
        if key in seen_text:
            continue
        if any(k.doc_id == ans.doc_id and k.start < ans.end and ans.start < k.end for k in kept):
            continue
        seen_text.add(key)
        kept.append(ans)
        if len(kept) >= max_answers:
            break
    return kept
