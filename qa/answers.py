"""Typed answers with their evidence, as Haystack's ExtractedAnswer and DrQA's outputs carry them.

Invariant (tested for every reader): `document.text[answer.start:answer.end] == answer.text` and
`passage.text[span_in_passage.start:span_in_passage.end] == answer.text`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PassageRef:
    """The chunk an answer was read from, with its place in the document."""

    chunk_id: str
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    text: str
    score: float
    doc_id: str
    start: int
    end: int
    passage: PassageRef
    span_in_passage: Span
    reader: str
    reader_score: float
    retrieval_score: float = 0.0
    answer_type: str | None = None
    details: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def with_score(self, score: float, **details: float) -> Answer:
        return Answer(
            **{
                **{f: getattr(self, f) for f in self.__dataclass_fields__},
                "score": score,
                "details": {**self.details, **details},
            }
        )


def make_answer(
    question: str,
    doc_text: str,
    doc_id: str,
    chunk_id: str,
    chunk_start: int,
    chunk_end: int,
    start: int,
    end: int,
    reader: str,
    reader_score: float,
    retrieval_score: float = 0.0,
    answer_type: str | None = None,
    details: dict[str, float] | None = None,
) -> Answer:
    """Build an answer from document offsets, checking that the span lies inside its passage."""
    if not (chunk_start <= start < end <= chunk_end):
        raise ValueError(f"answer span {start}-{end} is outside its passage {chunk_start}-{chunk_end}")
    return Answer(
        question=question,
        text=doc_text[start:end],
        score=reader_score,
        doc_id=doc_id,
        start=start,
        end=end,
        passage=PassageRef(chunk_id, doc_text[chunk_start:chunk_end], chunk_start, chunk_end),
        span_in_passage=Span(start - chunk_start, end - chunk_start),
        reader=reader,
        reader_score=reader_score,
        retrieval_score=retrieval_score,
        answer_type=answer_type,
        details=details or {},
    )
