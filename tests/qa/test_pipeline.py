"""End to end over the built-in corpus with the default (offline) reader."""

from __future__ import annotations

import pytest

from index.retriever import RetrievalMode
from qa.pipeline import QuestionError, ReaderUnavailableError, build_reader, validate_question
from qa.readers.base import ReaderKind
from qa.settings import Settings

pytestmark = pytest.mark.model

QUESTIONS = [
    "What was the median overall survival with STRIDE?",
    "How many patients were randomized in the lenvatinib trial?",
    "Which kinase is activated by sorafenib?",
    "What were the adverse events?",
    "What is sorafenib?",
]


def test_stride_question_answers_with_exact_citation(demo_pipeline) -> None:
    result = demo_pipeline.run("What was the median overall survival with STRIDE?")
    assert not result.no_answer
    best = result.answers[0]
    assert best.text == "16.43 months"
    assert best.doc_id == "abs-02"
    doc = demo_pipeline.index.documents["abs-02"]
    assert doc.text[best.start : best.end] == "16.43 months"
    assert best.passage.text[best.span_in_passage.start : best.span_in_passage.end] == "16.43 months"
    assert doc.text[best.passage.start : best.passage.end] == best.passage.text


@pytest.mark.parametrize("mode", list(RetrievalMode))
@pytest.mark.parametrize("question", QUESTIONS)
def test_every_answer_is_a_verbatim_span(demo_pipeline, question: str, mode: RetrievalMode) -> None:
    result = demo_pipeline.run(question, retriever=mode, max_answers=5, min_score=0.0)
    for a in result.answers:
        doc = demo_pipeline.index.documents[a.doc_id]
        assert doc.text[a.start : a.end] == a.text
        assert a.passage.start <= a.start < a.end <= a.passage.end
        assert 0.0 <= a.score <= 1.0


@pytest.mark.parametrize(
    "question",
    [
        "What was the median overall survival with pembrolizumab in the KEYNOTE-240 trial?",
        "What is the half-life of cabozantinib in children?",
        "Which vaccine prevents measles?",
    ],
)
def test_questions_the_corpus_cannot_answer_abstain(demo_pipeline, question: str) -> None:
    result = demo_pipeline.run(question)
    assert result.no_answer and result.answers == []
    assert result.passages  # the closest evidence is still shown


def test_same_question_same_answers(demo_pipeline) -> None:
    q = "What dose of sorafenib was given?"
    first = [(a.doc_id, a.start, a.end, a.score) for a in demo_pipeline.run(q).answers]
    assert first == [(a.doc_id, a.start, a.end, a.score) for a in demo_pipeline.run(q).answers]


def test_bad_questions_and_options_are_refused(demo_pipeline) -> None:
    with pytest.raises(QuestionError, match="empty"):
        demo_pipeline.run("   ")
    with pytest.raises(QuestionError, match="limit is"):
        demo_pipeline.run("why " * 1000)
    with pytest.raises(QuestionError, match="must be a string"):
        validate_question(42, 100)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="choose one of: dense, bm25, hybrid"):
        demo_pipeline.run("What is sorafenib?", retriever="semantic")
    with pytest.raises(ValueError, match="choose one of: heuristic, transformers"):
        demo_pipeline.run("What is sorafenib?", reader="bert")


def test_transformers_reader_without_model_is_a_clear_error(embedder) -> None:
    settings = Settings(reader_model=None, _env_file=None)
    with pytest.raises(ReaderUnavailableError, match="QA_READER_MODEL"):
        build_reader(ReaderKind.TRANSFORMERS, settings, embedder)
