"""The harness measures what `/ask` serves: its document ranking for a question is the order of `/ask`'s
passages (same retriever, same query expansion, same fusion), on an index it builds itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import load_gold
from eval.runner import EvalRunner, RunConfig
from index.retriever import RetrievalMode
from qa.readers.base import ReaderKind

pytestmark = pytest.mark.model

# Not seed_dev's questions: written for this test, several of them using an abbreviation's long form (so the
# BM25 side only matches the abstracts' short form through the expansion the retriever adds).
QUESTIONS = [
    "What was the median overall survival with STRIDE?",
    "Which compound induced ferroptosis in hepatocellular carcinoma cells?",
    "What was the objective response rate with lenvatinib?",
    "How was progression-free survival affected by adding TACE to sorafenib?",
    "Which adverse event was most common with sorafenib?",
    "What is the role of the tumour microenvironment in resistance?",
]


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory, demo_settings, embedder) -> EvalRunner:
    folder = tmp_path_factory.mktemp("parity")
    gold = folder / "gold.jsonl"
    gold.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "question": q, "answers": [], "doc_ids": []}) + "\n"
            for i, q in enumerate(QUESTIONS)
        ),
        encoding="utf-8",
    )
    r = EvalRunner(load_gold(gold), demo_settings, cache_dir=Path(folder / "cache"), embedder=embedder)
    r.warm_up()
    return r


@pytest.fixture(scope="module")
def client(demo_pipeline, demo_settings):
    """The service as `qa serve` runs it, over the session's demo pipeline."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.service.helpers import service_settings

    with TestClient(create_app(service_settings(demo_settings), pipeline=demo_pipeline)) as c:
        yield c


def served_documents(client, question: str) -> list[str]:
    body = client.post("/ask", json={"question": question}).json()
    docs: list[str] = []
    for p in body["passages"]:
        if p["doc_id"] not in docs:
            docs.append(p["doc_id"])
    return docs


@pytest.mark.parametrize("question", QUESTIONS)
def test_harness_ranking_equals_the_order_of_ask_passages(runner: EvalRunner, client, question: str) -> None:
    served = served_documents(client, question)
    assert served, "the service returned no passages"
    ranked = runner._deep_ranking(question, RetrievalMode(runner.settings.retriever), exclude=None)
    assert ranked[: len(served)] == served


def test_harness_run_reads_the_passages_ask_serves(runner: EvalRunner, client) -> None:
    """A whole harness run (retrieval ranking recorded per question) agrees with /ask question by question."""
    result = runner.run(RunConfig(RetrievalMode(runner.settings.retriever), ReaderKind.HEURISTIC))
    for record in result.records:
        served = served_documents(client, record.example.question)
        assert record.retrieved_doc_ids[: len(served)] == served
        assert record.read_doc_ids == served  # the reader read what /ask retrieved
