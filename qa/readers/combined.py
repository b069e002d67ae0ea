"""The trained reader and the heuristic reader read the same passages; a span's score mixes both.

For every span either reader proposes, score = (1 - a) * T + a * H, where T (H) is the score of the trained
(heuristic) reader's best candidate overlapping that span in the same document, 0 when it proposed none there.
`a` = `heuristic_weight`: 0 is the trained reader alone, 1 the heuristic reader alone. Agreement raises a
span; a span only one reader believes in keeps only that reader's share. The weight and the threshold are
chosen together by `qa calibrate` on several dev sets (`eval.calibration`), as for every reader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from index.documents import Document
from index.passages import RetrievedPassage
from qa.answers import Answer
from qa.readers.base import Reader, ReaderKind, ReaderOf

if TYPE_CHECKING:
    from index.embedder import Embedder
    from qa.settings import Settings


def _overlap_score(span: Answer, others: Sequence[Answer]) -> float:
    return max(
        (o.score for o in others if o.doc_id == span.doc_id and o.start < span.end and span.start < o.end),
        default=0.0,
    )


def combine_candidates(
    trained: Sequence[Answer], heuristic: Sequence[Answer], heuristic_weight: float, max_answers: int | None = None
) -> list[Answer]:
    """Every proposed span once (first proposer's copy), scored (1 - a) * T + a * H, best first."""
    a = heuristic_weight
    out: list[Answer] = []
    seen: set[tuple[str, int, int]] = set()
    for ans in [*trained, *heuristic]:
        key = (ans.doc_id, ans.start, ans.end)
        if key in seen:
            continue
        seen.add(key)
        t, h = _overlap_score(ans, trained), _overlap_score(ans, heuristic)
        # The mix is this reader's own score, not the proposing reader's.
        out.append(ans.with_reader_score((1 - a) * t + a * h, trained=t, heuristic=h))
    out.sort(key=lambda x: (-x.score, x.doc_id, x.start, x.end))
    return out if max_answers is None else out[:max_answers]


class CombinedReader:
    """Both readers over the same passages, scores mixed by `combine_candidates`."""

    name = "combined"
    independent_passages = False  # the heuristic reader's part is not

    def __init__(self, trained: Reader, heuristic: Reader, heuristic_weight: float = 0.0) -> None:
        self.trained = trained
        self.heuristic = heuristic
        self.heuristic_weight = heuristic_weight
        self.min_score = trained.min_score
        self.retrieval_weight = trained.retrieval_weight
        self.coverage_exponent = trained.coverage_exponent
        self.secondary_ratio = trained.secondary_ratio

    def warm_up(self) -> None:
        self.trained.warm_up()
        self.heuristic.warm_up()
        calibration = getattr(self.trained, "calibration", None) or {}
        combined = calibration.get("combined")
        if combined:
            self.heuristic_weight = float(combined["heuristic_weight"])
            self.min_score = float(combined["min_answer_score"])
            self.retrieval_weight = float(combined["retrieval_weight"])
            self.coverage_exponent = float(combined.get("coverage_exponent", 0.0))
            self.secondary_ratio = float(combined.get("secondary_ratio", 0.0))
        else:
            self.min_score, self.retrieval_weight = self.trained.min_score, self.trained.retrieval_weight
            self.coverage_exponent = self.trained.coverage_exponent
            self.secondary_ratio = self.trained.secondary_ratio

    def run(
        self,
        question: str,
        passages: Sequence[RetrievedPassage],
        documents: Mapping[str, Document],
        max_answers: int = 5,
    ) -> list[Answer]:
        trained = self.trained.run(question, passages, documents, max_answers)
        heuristic = self.heuristic.run(question, passages, documents, max_answers)
        return combine_candidates(trained, heuristic, self.heuristic_weight, max_answers)


def from_settings(settings: Settings, embedder: Embedder, reader_of: ReaderOf) -> CombinedReader:
    """The registry's factory (qa.readers.base.READERS): the pipeline's own trained and heuristic readers, shared
    with their single-reader uses (one model in memory)."""
    return CombinedReader(reader_of(ReaderKind.TRANSFORMERS), reader_of(ReaderKind.HEURISTIC))
