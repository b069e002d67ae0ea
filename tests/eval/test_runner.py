"""End to end on a tiny corpus written here: outcomes that follow from the data, not from the reader's skill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval.datasets import GoldSet, load_gold
from eval.metrics import RETRIEVAL_MEASURES, mean
from eval.report import error_lines, report_json, write_errors
from eval.runner import EvalRunner, RunConfig
from index.embedder import Embedder
from index.retriever import RetrievalMode
from index.store import VERSIONS_DIR
from qa.metrics import exact_match, f1_score
from qa.readers.base import ReaderKind
from qa.settings import Settings

pytestmark = pytest.mark.model

DOCS = [
    {
        "id": "d-aspirin",
        "text": "Aspirin reduced the risk of myocardial infarction by 44% in the Physicians Health Study.",
    },
    {
        "id": "d-metformin",
        "text": "Metformin lowered HbA1c by 1.2 percentage points over 24 weeks in adults with diabetes.",
    },
    {
        "id": "d-malaria",
        "text": "Artemisinin therapy cleared Plasmodium falciparum parasitaemia within 48 hours in children.",
    },
    {
        "id": "d-statin",
        "text": "Rosuvastatin reduced LDL cholesterol by 50% compared with placebo in the JUPITER trial.",
    },
]
GOLD = [
    {"id": "q-aspirin", "question": "By how much did aspirin reduce myocardial infarction?", "answers": ["44%"],
     "doc_ids": ["d-aspirin"]},
    {"id": "q-metformin", "question": "How much did metformin lower HbA1c?", "answers": ["1.2 percentage points"],
     "doc_ids": ["d-metformin"]},
    {"id": "q-malaria", "question": "How fast did artemisinin clear Plasmodium falciparum parasitaemia?",
     "answers": ["within 48 hours", "48 hours"], "doc_ids": ["d-malaria"]},
    {"id": "q-none", "question": "What is the capital city of Peru?", "answers": [], "doc_ids": []},
]  # fmt: skip


def _settings(**overrides: object) -> Settings:
    """Defaults, whatever the environment, but a reader model folder that does not exist: the transformers and
    combined readers are unavailable (the heuristic one runs without a model)."""
    return Settings(_env_file=None, reader_model="/nonexistent/reader-model", **overrides)


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> GoldSet:
    root = tmp_path_factory.mktemp("tiny-gold")
    return load_gold(_write_jsonl(root / "gold.jsonl", GOLD), corpus=_write_jsonl(root / "corpus.jsonl", DOCS))


@pytest.fixture(scope="module")
def runner(tiny: GoldSet, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> EvalRunner:
    r = EvalRunner(tiny, _settings(), cache_dir=tmp_path_factory.mktemp("cache"), embedder=embedder)
    r.warm_up()
    return r


def test_bm25_ranks_the_only_lexically_matching_document_first(runner: EvalRunner) -> None:
    result = runner.run(RunConfig(RetrievalMode.BM25, ReaderKind.HEURISTIC))
    assert len(result.records) == 4
    by_id = {r.example.id: r for r in result.records}
    for qid in ("q-aspirin", "q-metformin", "q-malaria"):
        assert by_id[qid].retrieved_doc_ids[0] == by_id[qid].example.gold_doc_ids[0]
        assert by_id[qid].gold_read
        assert by_id[qid].retrieval == dict.fromkeys(RETRIEVAL_MEASURES, 1.0)
    assert by_id["q-none"].retrieval is None  # no gold document: left out of retrieval metrics
    assert result.retrieval == {**dict.fromkeys(RETRIEVAL_MEASURES, 1.0), "n": 3}


def test_overall_numbers_are_the_means_of_the_per_question_ones(runner: EvalRunner) -> None:
    result = runner.run(RunConfig(RetrievalMode.HYBRID, ReaderKind.HEURISTIC))
    answerable = [r for r in result.records if r.example.answerable]
    for r in result.records:
        assert r.exact_match == exact_match(r.predicted, r.example.answers)
        assert r.f1 == f1_score(r.predicted, r.example.answers)
        assert r.latency_ms > 0
        assert len(r.retrieved_doc_ids) == len(set(r.retrieved_doc_ids)) <= 4
    assert result.answer["n_answerable"] == 3
    assert result.answer["exact_match"] == mean(r.exact_match for r in answerable)
    assert result.answer["f1"] == mean(r.f1 for r in answerable)
    assert result.answer["exact_match_all"] == mean(r.exact_match for r in result.records)
    none = next(r for r in result.records if not r.example.answerable)
    abstentions = [r for r in result.records if r.abstained]
    assert result.no_answer.n == 1
    assert result.no_answer.recall == (1.0 if none.abstained else 0.0)
    expected_precision = (1 if none.abstained else 0) / len(abstentions) if abstentions else None
    assert result.no_answer.precision == expected_precision
    lat = sorted(r.latency_ms for r in result.records)
    assert result.latency_ms["p50"] == pytest.approx((lat[1] + lat[2]) / 2)


def test_oracle_retrieval_hands_the_reader_the_gold_document_only(runner: EvalRunner) -> None:
    result = runner.run(RunConfig(RetrievalMode.HYBRID, ReaderKind.HEURISTIC, oracle=True))
    texts = {d["id"]: d["text"] for d in DOCS}
    for r in result.records:
        if r.example.answerable:
            assert r.read_doc_ids == r.example.gold_doc_ids
            assert r.predicted is None or r.predicted in texts[r.example.gold_doc_ids[0]]
        else:  # no gold document to hand over: retrieved as usual
            assert r.read_doc_ids
    assert result.retrieval["recall@1"] == 1.0
    assert result.details["retriever"] == "oracle"


def test_runs_are_deterministic(runner: EvalRunner) -> None:
    config = RunConfig(RetrievalMode.HYBRID, ReaderKind.HEURISTIC)
    first, second = runner.run(config), runner.run(config)
    assert [(r.predicted, r.score, r.retrieved_doc_ids) for r in first.records] == [
        (r.predicted, r.score, r.retrieved_doc_ids) for r in second.records
    ]


def test_report_has_the_promised_shape(runner: EvalRunner, tiny: GoldSet, tmp_path: Path) -> None:
    result = runner.run(RunConfig(RetrievalMode.BM25, ReaderKind.HEURISTIC))
    report = json.loads(json.dumps(report_json(tiny, result)))
    assert {"gold", "n", "answer", "no_answer", "retrieval", "latency_ms", "config", "per_question"} <= report.keys()
    assert report["n"] == 4
    assert {"exact_match", "f1", "n_answerable"} <= report["answer"].keys()
    assert {"n", "precision", "recall"} <= report["no_answer"].keys()
    assert set(RETRIEVAL_MEASURES) <= report["retrieval"].keys()
    assert {"p50", "p95"} <= report["latency_ms"].keys()
    assert report["config"]["retriever"] == "bm25"
    assert report["config"]["n_documents"] == 4
    for q in report["per_question"]:
        assert {"id", "predicted", "score", "exact_match", "f1", "retrieved_doc_ids"} <= q.keys()
        assert (q["predicted"] is None) == (q["score"] is None) == q["abstained"]
        assert 0.0 <= q["exact_match"] <= q["f1"] <= 1.0
    misses = [r for r in result.records if r.exact_match < 1.0]
    path = tmp_path / "errors.jsonl"
    assert write_errors(path, result) == len(misses)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["id"] for e in lines] == [r.example.id for r in misses]
    for e in lines:
        assert {"question", "gold", "predicted", "score", "retrieved_doc_ids", "gold_retrieved"} <= e.keys()
        assert e["error"] in {"wrong_answer", "abstained", "answered_unanswerable"}


def test_second_warm_up_reuses_the_cached_index(runner: EvalRunner, tiny: GoldSet, embedder: Embedder) -> None:
    again = EvalRunner(tiny, _settings(), cache_dir=runner.cache_dir, embedder=embedder)
    again.warm_up()
    assert again.pipeline.settings.index_dir == runner.pipeline.settings.index_dir
    assert len(list((runner.pipeline.settings.index_dir / VERSIONS_DIR).iterdir())) == 1
    other = EvalRunner(tiny, _settings(chunk_max_tokens=64), cache_dir=runner.cache_dir, embedder=embedder)
    other.warm_up()
    assert other.pipeline.settings.index_dir != runner.pipeline.settings.index_dir


def test_a_damaged_cached_index_is_rebuilt(tiny: GoldSet, embedder: Embedder, tmp_path: Path) -> None:
    first = EvalRunner(tiny, _settings(), cache_dir=tmp_path, embedder=embedder)
    first.warm_up()
    chunks = first.pipeline.index.path / "chunks.jsonl"
    chunks.write_text(chunks.read_text()[:-10])
    again = EvalRunner(tiny, _settings(), cache_dir=tmp_path, embedder=embedder)
    again.warm_up()
    assert again.pipeline.index.path != first.pipeline.index.path
    assert len(again.pipeline.index.chunks) == len(first.pipeline.index.chunks)


def test_retrieval_only_gold_with_graded_judgements(tmp_path: Path, embedder: Embedder) -> None:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    _write_jsonl(root / "corpus.jsonl", [{"_id": d["id"], "title": "", "text": d["text"]} for d in DOCS])
    _write_jsonl(
        root / "queries.jsonl",
        [{"_id": "q1", "text": "rosuvastatin JUPITER"}, {"_id": "d-aspirin", "text": "aspirin infarction"}],
    )
    # q1: the one lexical match is graded 2, a document sharing no word with it is graded 1.
    # d-aspirin: its only match is the document of the same id, which BEIR ignores.
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td-statin\t2\nq1\td-malaria\t1\nd-aspirin\td-metformin\t1\n"
    )
    gold = load_gold(root)
    r = EvalRunner(gold, _settings(), cache_dir=tmp_path / "cache", embedder=embedder)
    r.warm_up()
    result = r.run(RunConfig(RetrievalMode.BM25, None))
    q1, qa = result.records
    assert q1.retrieved_doc_ids == ["d-statin"]
    assert q1.retrieval["recall@1"] == 0.5
    assert q1.retrieval["mrr@10"] == 1.0
    assert q1.retrieval["ndcg@10"] == pytest.approx(2 / (2 + 1 / 1.584962500721156))
    assert qa.retrieved_doc_ids == []
    assert qa.retrieval["recall@10"] == 0.0
    assert q1.predicted is None and q1.exact_match is None and not q1.read
    assert result.answer["n_answerable"] == 0 and result.answer["exact_match"] is None
    assert [e["id"] for e in error_lines(result)] == ["d-aspirin"]
    with pytest.raises(Exception, match="retrieval-only"):
        r.run(RunConfig(RetrievalMode.BM25, ReaderKind.HEURISTIC))


def test_an_unavailable_reader_is_skipped_in_a_comparison(runner: EvalRunner) -> None:
    from eval.compare import run_all

    configs = runner.configs(True, RetrievalMode.HYBRID, ReaderKind.HEURISTIC, oracle=False)
    assert [c.name for c in configs] == [
        "dense + heuristic",
        "bm25 + heuristic",
        "hybrid + heuristic",
        "dense + transformers",
        "bm25 + transformers",
        "hybrid + transformers",
        "dense + combined",
        "bm25 + combined",
        "hybrid + combined",
        "oracle + heuristic",
        "oracle + transformers",
        "oracle + combined",
    ]
    results, skipped = run_all(runner, configs)  # the reader model folder is missing: transformers cannot run
    assert [r.config.name for r in results] == [
        "dense + heuristic",
        "bm25 + heuristic",
        "hybrid + heuristic",
        "oracle + heuristic",
    ]
    assert {name for name, _ in skipped} == {
        "dense + transformers",
        "bm25 + transformers",
        "hybrid + transformers",
        "oracle + transformers",
        "dense + combined",
        "bm25 + combined",
        "hybrid + combined",
        "oracle + combined",
    }


def test_cli_eval_writes_report_and_errors(
    tiny: GoldSet, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import app

    monkeypatch.setattr("eval.runner.Embedder", lambda *_a, **_k: embedder)  # the session's loaded model
    for var in ("QA_READER", "QA_READER_MODEL", "QA_RETRIEVER", "QA_TOP_K"):
        monkeypatch.delenv(var, raising=False)
    report, errors = tmp_path / "r.json", tmp_path / "e.jsonl"
    args = ["eval", str(tiny.path), "--corpus", tiny.corpus_source, "--retriever", "bm25", "--cache-dir",
            str(tmp_path / "cache"), "--report", str(report), "--errors", str(errors), "--reader", "heuristic"]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "bm25 + heuristic" in out.output
    data = json.loads(report.read_text())
    assert data["n"] == 4 and data["retrieval"]["recall@1"] == 1.0
    misses = sum(1 for q in data["per_question"] if q["exact_match"] < 1.0)
    assert len(errors.read_text().splitlines()) == misses
    args += ["--reader", "transformers", "--reader-model", str(tmp_path / "no-such-model")]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2
    assert "unavailable" in refused.output
