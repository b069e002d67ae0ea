"""End to end over the built-in corpus with the default (offline) reader."""

from __future__ import annotations

import pytest

from index.embedder import EmbedderBackend
from index.errors import IndexMismatchError
from index.retriever import RetrievalMode
from qa.pipeline import (
    Ask,
    BatchItemError,
    QAPipeline,
    QuestionError,
    validate_question,
)
from qa.readers.base import READERS, ReaderKind, build_reader
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
        # No abstract names pembrolizumab or KEYNOTE-240: the reader alone answered another trial's survival figure
        # above its threshold; question coverage (qa/coverage.py) is what makes the service abstain here.
        "What was the median overall survival with pembrolizumab in the KEYNOTE-240 trial?",
        "What was the median progression-free survival with tivozanib?",
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


def test_the_default_reader_is_the_shipped_model_with_its_own_calibration(embedder) -> None:
    from qa.readers.transformers_reader import BUNDLED_READER_DIR, CALIBRATION_FILE, TransformersReader

    settings = Settings(_env_file=None)
    assert settings.reader is ReaderKind.TRANSFORMERS and settings.reader_model == str(BUNDLED_READER_DIR)
    reader = build_reader(ReaderKind.TRANSFORMERS, settings, embedder, reader_of=lambda kind: None)
    assert isinstance(reader, TransformersReader) and reader.model_name == str(BUNDLED_READER_DIR)
    assert (BUNDLED_READER_DIR / CALIBRATION_FILE).is_file() and (BUNDLED_READER_DIR / "MODEL_CARD.md").is_file()


def test_threshold_and_weight_come_from_the_reader_unless_set(demo_pipeline) -> None:
    reader = demo_pipeline.reader(ReaderKind.HEURISTIC)
    assert demo_pipeline.min_score(reader) == reader.min_score == 0.65
    assert demo_pipeline.retrieval_weight(reader) == reader.retrieval_weight == 0.5
    from qa.pipeline import QAPipeline

    assert demo_pipeline.coverage_exponent(reader) == reader.coverage_exponent == 2.0
    assert demo_pipeline.secondary_ratio(reader) == reader.secondary_ratio == 1.0
    update = {"min_answer_score": 0.9, "retrieval_weight": 0.2, "coverage_exponent": 1.5, "secondary_ratio": 0.7}
    custom = QAPipeline(demo_pipeline.settings.model_copy(update=update))
    assert custom.min_score(reader) == 0.9 and custom.retrieval_weight(reader) == 0.2
    assert custom.coverage_exponent(reader) == 1.5 and custom.secondary_ratio(reader) == 0.7


def test_the_heuristic_readers_constants_are_its_recorded_calibration() -> None:
    """Its threshold, weight and exponent are class constants; they must be what its last calibration chose, at
    the top_k the service reads with (docs/results/calibration-heuristic.json, written by the release script)."""
    import json

    from qa.readers.heuristic import HeuristicReader
    from qa.settings import DEFAULT_TOP_K, PACKAGE_DIR

    report = json.loads((PACKAGE_DIR.parent / "docs" / "results" / "calibration-heuristic.json").read_text())
    best = report["best"]
    assert report["top_k"] == DEFAULT_TOP_K and report["expand_documents"] == 0
    assert (HeuristicReader.min_score, HeuristicReader.retrieval_weight, HeuristicReader.coverage_exponent) == (
        best["threshold"],
        best["retrieval_weight"],
        best["coverage_exponent"],
    )
    assert HeuristicReader.secondary_ratio == report["secondary"]["secondary_ratio"]


def seed_dev_questions(n: int) -> list[str]:
    import json

    from tests.conftest import SHARED

    path = SHARED / "gold" / "seed_dev.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh][:n]


def assert_same_results(batch: list, alone: list) -> None:
    assert len(batch) == len(alone)
    for b, a in zip(batch, alone, strict=True):
        assert b.question == a.question and b.no_answer == a.no_answer
        assert [p.chunk.id for p in b.passages] == [p.chunk.id for p in a.passages]
        assert [p.score for p in b.passages] == pytest.approx([p.score for p in a.passages], abs=1e-5)
        assert [(x.text, x.doc_id, x.start, x.end) for x in b.answers] == [
            (x.text, x.doc_id, x.start, x.end) for x in a.answers
        ]
        assert [x.score for x in b.answers] == pytest.approx([x.score for x in a.answers], abs=1e-5)
        assert b.index_fingerprint == a.index_fingerprint


def test_a_batch_answers_as_one_by_one_does(demo_pipeline) -> None:
    questions = seed_dev_questions(10)
    assert_same_results(demo_pipeline.run_batch(questions), [demo_pipeline.run(q) for q in questions])


def test_a_batch_keeps_each_questions_own_options(demo_pipeline) -> None:
    asks = [
        Ask("What was the median overall survival with STRIDE?", top_k=2, retriever="bm25"),
        Ask("Which kinases does lenvatinib inhibit?", top_k=8, retriever="dense", max_answers=1),
        Ask("What are desmoid tumors?", min_score=0.0),
    ]
    alone = [demo_pipeline.run(a.question, a.top_k, a.max_answers, a.retriever, a.reader, a.min_score) for a in asks]
    assert_same_results(demo_pipeline.run_batch(asks), alone)
    assert [len(r.passages) for r in alone] == [2, 8, demo_pipeline.settings.top_k]


def test_a_bad_question_in_a_batch_is_named_before_any_work(demo_pipeline) -> None:
    with pytest.raises(BatchItemError) as err:
        demo_pipeline.run_batch(["What is sorafenib?", "   "])
    assert err.value.item == 1 and isinstance(err.value.error, QuestionError)
    assert demo_pipeline.run_batch([]) == []


def test_timings_split_retrieval_into_embed_and_search(demo_pipeline) -> None:
    t = demo_pipeline.run("What is sorafenib?").timings_ms
    assert set(t) == {"embed", "search", "retrieve", "read", "total"}
    assert all(v >= 0 for v in t.values())
    assert t["embed"] + t["search"] <= t["retrieve"] + 1e-6
    assert t["total"] == pytest.approx(t["retrieve"] + t["read"])


@pytest.fixture(scope="module")
def torch_pipeline(tmp_path_factory: pytest.TempPathFactory, torch_embedder) -> QAPipeline:
    """The pipeline as QA_EMBEDDING_BACKEND=torch (the reference backend) builds it, over its own index."""
    settings = Settings(index_dir=tmp_path_factory.mktemp("torch") / "index", embedding_backend="torch", _env_file=None)
    pipeline = QAPipeline(settings, embedder=torch_embedder)
    pipeline.warm_up(build_if_missing=True)
    return pipeline


def test_the_default_pipeline_embeds_with_int8_onnx(demo_pipeline) -> None:
    assert demo_pipeline.embedder.backend is EmbedderBackend.ONNX_INT8
    assert demo_pipeline.index.manifest.model.fingerprint.endswith("-int8")


def test_torch_backend_answers_the_stride_question_as_the_default_does(torch_pipeline, demo_pipeline) -> None:
    question = "What was the median overall survival with STRIDE?"
    best = torch_pipeline.run(question).answers[0]
    assert (best.text, best.doc_id) == ("16.43 months", "abs-02")
    default = demo_pipeline.run(question).answers[0]
    assert (default.text, default.doc_id, default.start) == (best.text, best.doc_id, best.start)


def test_int8_batch_answers_as_one_by_one_does(demo_pipeline: QAPipeline) -> None:
    questions = seed_dev_questions(10)
    assert_same_results(demo_pipeline.run_batch(questions), [demo_pipeline.run(q) for q in questions])


def test_an_index_of_the_other_backend_is_refused_naming_both(demo_pipeline, torch_pipeline, torch_embedder) -> None:
    torch_dir = torch_pipeline.settings.index_dir
    wants_int8 = QAPipeline(
        Settings(index_dir=torch_dir, embedding_backend="onnx-int8", _env_file=None), embedder=demo_pipeline.embedder
    )
    with pytest.raises(IndexMismatchError) as err:
        wants_int8.load_current_index()
    msg = str(err.value)
    assert "built by the torch (or onnx) embedding backend" in msg and "configured for onnx-int8" in msg
    assert (
        "QA_EMBEDDING_BACKEND=torch" in msg and f"qa index --index-dir {torch_dir} --embedding-backend onnx-int8" in msg
    )

    wants_torch = QAPipeline(
        Settings(index_dir=demo_pipeline.settings.index_dir, embedding_backend="torch", _env_file=None),
        embedder=torch_embedder,
    )
    with pytest.raises(
        IndexMismatchError, match=r"built by the onnx-int8 embedding backend.*QA_EMBEDDING_BACKEND=onnx-int8"
    ):
        wants_torch.load_current_index()


def test_readers_come_from_the_registry_and_the_combined_one_shares_its_parts(demo_pipeline) -> None:
    assert [k.value for k in ReaderKind] == [e.name for e in READERS]
    combined = demo_pipeline.reader(ReaderKind.COMBINED)
    assert combined.trained is demo_pipeline.reader(ReaderKind.TRANSFORMERS)  # one model in memory, not two
    assert combined.heuristic is demo_pipeline.reader(ReaderKind.HEURISTIC)


def test_question_coverage_weighs_the_readers_scores(demo_pipeline, monkeypatch) -> None:
    """No abstract names tivozanib: with coverage on, every candidate's reader score is its score alone times its
    document's coverage ** exponent, and the coverage of a question about an unknown drug is low."""
    question = "What was the median progression-free survival with tivozanib?"
    passages = demo_pipeline.retrieve(question, 5, "hybrid")
    monkeypatch.setattr(demo_pipeline.settings, "coverage_exponent", 0.0)
    plain = {(a.doc_id, a.start, a.end): a for a in demo_pipeline.read(question, passages, min_score=0.0)}
    monkeypatch.setattr(demo_pipeline.settings, "coverage_exponent", 2.0)
    weighed = demo_pipeline.read(question, passages, min_score=0.0)
    assert plain and weighed
    for a in weighed:
        c = a.details["coverage"]
        assert 0 < c < 0.6  # tivozanib, no chunk's term, weighs about half of the question
        if (a.doc_id, a.start, a.end) in plain:
            plain_score = plain[(a.doc_id, a.start, a.end)].reader_score
            # details keep the coverage rounded to 6 decimals: allow what 5e-7 of it moves c ** 2
            assert abs(a.reader_score - plain_score * c**2) <= plain_score * ((c + 5e-7) ** 2 - c**2) + 1e-12
