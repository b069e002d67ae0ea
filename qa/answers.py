"""Typed answers with their evidence, as Haystack's ExtractedAnswer and DrQA's outputs carry them, and their one
serialised form: `QAResult.to_dict()` is what `qa ask --json` prints, what `POST /ask` returns (the service's
response schema validates it as is) and what the harness reads; `from_dict` reads it back.

Invariant (tested for every reader): `document.text[answer.start:answer.end] == answer.text` and
`passage.text[span_in_passage.start:span_in_passage.end] == answer.text`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from index.documents import Chunk, Document
from index.passages import RetrievedPassage

SCORE_DECIMALS = 6  # scores are rounded in the serialised form: enough to order answers, stable across runs


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
class Citation:
    """How a reader finds the source again: the document's title and, where the corpus has them (PubMed XML
    does; a JSONL record may give them in `meta`), its PMID, journal and year."""

    title: str | None = None
    pmid: str | None = None
    journal: str | None = None
    year: str | None = None

    @classmethod
    def of(cls, doc: Document) -> Citation:
        def field_of(key: str) -> str | None:
            value = doc.meta.get(key)
            return None if value is None or value == "" else str(value)

        return cls(doc.title, field_of("pmid"), field_of("journal"), field_of("year"))


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
    citation: Citation = Citation()

    def to_json(self) -> dict[str, Any]:
        """Every field, for debugging and caches; `to_dict` is the public form."""
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Answer:
        """`to_json`'s form read back, every field as it was."""
        return cls(
            **{
                **obj,
                "passage": PassageRef(**obj["passage"]),
                "span_in_passage": Span(**obj["span_in_passage"]),
                "details": dict(obj.get("details") or {}),
                "citation": Citation(**(obj.get("citation") or {})),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """The public form of an answer (CLI `--json`, HTTP, harness)."""
        return {
            "text": self.text,
            "score": round(self.score, SCORE_DECIMALS),
            "doc_id": self.doc_id,
            "start": self.start,
            "end": self.end,
            "citation": asdict(self.citation),
            "passage": asdict(self.passage),
            "span_in_passage": asdict(self.span_in_passage),
            "answer_type": self.answer_type,
            "reader": self.reader,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], question: str) -> Answer:
        """An answer read back from `to_dict`'s form; the reader's own score is not in it (the score stands in)."""
        return cls(
            question=question,
            text=obj["text"],
            score=float(obj["score"]),
            doc_id=obj["doc_id"],
            start=int(obj["start"]),
            end=int(obj["end"]),
            passage=PassageRef(**obj["passage"]),
            span_in_passage=Span(**obj["span_in_passage"]),
            reader=obj.get("reader") or "",
            reader_score=float(obj["score"]),
            answer_type=obj.get("answer_type"),
            citation=Citation(**(obj.get("citation") or {})),
        )

    def with_citation(self, doc: Document) -> Answer:
        return replace(self, citation=Citation.of(doc))

    def with_score(self, score: float, **details: float) -> Answer:
        """The final score changed (retrieval interpolation); the reader's own score stays as it was."""
        return Answer(
            **{
                **{f: getattr(self, f) for f in self.__dataclass_fields__},
                "score": score,
                "details": {**self.details, **details},
            }
        )

    def with_reader_score(self, score: float, **details: float) -> Answer:
        """The reader's own score changed (a reader that rescores another's spans): both fields, since the
        retrieval interpolation (`qa.ranking.combine_with_retrieval`) reads `reader_score`."""
        return replace(self.with_score(score, **details), reader_score=score)


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


def passage_to_dict(p: RetrievedPassage) -> dict[str, Any]:
    return {
        "chunk_id": p.chunk.id,
        "doc_id": p.chunk.doc_id,
        "start": p.chunk.start,
        "end": p.chunk.end,
        "text": p.chunk.text,
        "score": round(p.score, SCORE_DECIMALS),
        "rank": p.rank,
    }


def passage_from_dict(obj: Mapping[str, Any]) -> RetrievedPassage:
    chunk_id = obj["chunk_id"]
    chunk = Chunk(chunk_id, obj["doc_id"], int(obj["start"]), int(obj["end"]), obj["text"], Chunk.ordinal_of(chunk_id))
    return RetrievedPassage(chunk=chunk, score=float(obj["score"]), rank=int(obj["rank"]))


@dataclass(slots=True)
class QAResult:
    """One question's outcome: answers best first (empty when the pipeline abstains), and the ranked evidence."""

    question: str
    answers: list[Answer]
    passages: list[RetrievedPassage]
    no_answer: bool
    # embed + search = retrieve; retrieve + read = total. In a batch, retrieval is shared: each result carries
    # an equal share of it.
    timings_ms: dict[str, float] = field(default_factory=dict)
    index_fingerprint: str | None = None  # the manifest fingerprint of the index that answered
    missing_shards: list[int] = field(default_factory=list)  # a sharded index's shards that did not answer in time

    def to_dict(self) -> dict[str, Any]:
        """The one serialised form of a result: `qa ask --json`, `POST /ask`'s body, the harness's records."""
        return {
            "question": self.question,
            "no_answer": self.no_answer,
            "answers": [a.to_dict() for a in self.answers],
            "passages": [passage_to_dict(p) for p in self.passages],
            "took_ms": round(self.timings_ms.get("total", 0.0), 3),
            "index_fingerprint": self.index_fingerprint,
            "partial": bool(self.missing_shards),
            "missing_shards": list(self.missing_shards),
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> QAResult:
        question = obj["question"]
        return cls(
            question=question,
            answers=[Answer.from_dict(a, question) for a in obj["answers"]],
            passages=[passage_from_dict(p) for p in obj["passages"]],
            no_answer=bool(obj["no_answer"]),
            timings_ms={"total": float(obj.get("took_ms", 0.0))},
            index_fingerprint=obj.get("index_fingerprint"),
            missing_shards=[int(s) for s in obj.get("missing_shards") or []],
        )
