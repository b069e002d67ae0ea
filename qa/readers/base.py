"""The reader protocol: passages in, candidate answers (verbatim document spans) out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Protocol

from index.documents import Document
from index.retriever import RetrievedPassage
from qa.answers import Answer


class ReaderKind(StrEnum):
    HEURISTIC = "heuristic"
    TRANSFORMERS = "transformers"
    COMBINED = "combined"  # both, scores mixed: qa/readers/combined.py


class Reader(Protocol):
    """Readers score candidates in [0, 1]; ranking, deduplication and abstention happen in `qa.ranking`.

    A score means something only on its own reader's scale, so each reader carries the abstention threshold
    and the retrieval weight calibrated for it (`min_score`, `retrieval_weight`); settings override them.
    """

    name: str
    min_score: float
    retrieval_weight: float

    def warm_up(self) -> None: ...

    def run(
        self,
        question: str,
        passages: Sequence[RetrievedPassage],
        documents: Mapping[str, Document],
        max_answers: int = 5,
    ) -> list[Answer]: ...
