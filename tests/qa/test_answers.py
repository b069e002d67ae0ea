"""One serialised form of a result: `QAResult.to_dict()` is what the CLI prints, the service returns and the
harness reads; `from_dict` reads it back without loss of anything it carries."""

from __future__ import annotations

import json

import pytest

from index.documents import Chunk, Document
from index.passages import RetrievedPassage
from qa.answers import Answer, Citation, QAResult, make_answer

DOC = Document(
    "38000001",
    "Sorafenib prolonged median overall survival to 10.7 months. Placebo gave 7.9 months.",
    title="Sorafenib in advanced hepatocellular carcinoma",
    meta={"pmid": "38000001", "journal": "N Engl J Med", "year": 2008},
)


def result() -> QAResult:
    chunk = Chunk.from_document(DOC, 0, len(DOC.text), 0)
    start = DOC.text.index("10.7 months")
    answer = make_answer(
        "What was the median OS?", DOC.text, DOC.id, chunk.id, 0, len(DOC.text), start, start + 11, "heuristic", 0.8
    ).with_citation(DOC)
    passage = RetrievedPassage(chunk=chunk, score=1.2345678, rank=1)
    return QAResult("What was the median OS?", [answer], [passage], False, {"total": 12.3456}, "fp-1")


def test_round_trip_keeps_everything_the_public_form_carries() -> None:
    r = result()
    out = r.to_dict()
    assert json.loads(json.dumps(out)) == out  # plain JSON
    back = QAResult.from_dict(out)
    assert back.to_dict() == out
    assert back.answers[0].text == DOC.text[back.answers[0].start : back.answers[0].end]
    assert back.passages[0].chunk == r.passages[0].chunk


def test_the_full_form_reads_back_every_field() -> None:
    """`to_json` (caches, calibration candidates) keeps what the public form drops: the reader's own score, the
    retrieval score and the details."""
    answer = result().answers[0].with_score(0.5, coverage=0.9, retrieval=1.0)
    back = Answer.from_json(json.loads(json.dumps(answer.to_json())))
    assert back == answer and back.reader_score == 0.8 and back.details == {"coverage": 0.9, "retrieval": 1.0}


def test_citation_names_title_pmid_journal_and_year() -> None:
    cited = result().to_dict()["answers"][0]["citation"]
    assert cited == {
        "title": "Sorafenib in advanced hepatocellular carcinoma",
        "pmid": "38000001",
        "journal": "N Engl J Med",
        "year": "2008",
    }
    assert Citation.of(Document("x", "text")) == Citation()  # a bare record: nulls, not errors


def test_the_response_schema_is_the_result_form_field_for_field() -> None:
    from pydantic import ValidationError

    from service.schemas import AskResponse

    out = result().to_dict()
    assert AskResponse.model_validate(out).model_dump(mode="json", exclude_unset=True) == out
    out["answers"][0]["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        AskResponse.model_validate(out)  # a field the schema lacks is an error, not silently dropped


def test_a_malformed_chunk_id_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="not a chunk id"):
        Chunk.ordinal_of("abs-02")
