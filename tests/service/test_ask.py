"""POST /ask and /ask/batch: answers as the pipeline gives them, and a named 4xx for every kind of bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.pipeline import QAPipeline
from tests.service.helpers import STRIDE, UNANSWERABLE, expected_json, json_difference, without_timing

pytestmark = pytest.mark.model


def fields(response: Any) -> list[str]:
    return [d["field"] for d in response.json()["detail"]]


def test_stride_answer_is_a_verbatim_span_with_its_citation(client: TestClient) -> None:
    r = client.post("/ask", json={"question": STRIDE})
    assert r.status_code == 200
    body = r.json()
    assert body["no_answer"] is False
    top = body["answers"][0]
    assert top["text"] == "16.43 months"
    assert body["took_ms"] > 0
    doc = client.get(f"/documents/{top['doc_id']}").json()
    for a in body["answers"]:
        text = client.get(f"/documents/{a['doc_id']}").json()["text"] if a["doc_id"] != doc["id"] else doc["text"]
        assert text[a["start"] : a["end"]] == a["text"]
        p = a["passage"]
        assert text[p["start"] : p["end"]] == p["text"]
        assert p["text"][a["span_in_passage"]["start"] : a["span_in_passage"]["end"]] == a["text"]
    ranks = [p["rank"] for p in body["passages"]]
    assert ranks == list(range(1, len(ranks) + 1))


def test_response_is_the_cli_json_shape_of_the_in_process_result(client: TestClient, demo_pipeline: QAPipeline) -> None:
    r = client.post("/ask", json={"question": STRIDE, "top_k": 3, "max_answers": 2, "retriever": "bm25"})
    assert r.status_code == 200
    assert without_timing(r.json()) == expected_json(demo_pipeline, STRIDE, top_k=3, max_answers=2, retriever="bm25")
    assert len(r.json()["passages"]) == 3
    assert len(r.json()["answers"]) <= 2


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_every_retriever_is_accepted(client: TestClient, retriever: str) -> None:
    r = client.post("/ask", json={"question": STRIDE, "retriever": retriever, "top_k": 1})
    assert r.status_code == 200
    assert len(r.json()["passages"]) == 1


def test_question_is_trimmed_like_the_pipeline_does(client: TestClient) -> None:
    r = client.post("/ask", json={"question": f"  {STRIDE}\n"})
    assert r.status_code == 200
    assert r.json()["question"] == STRIDE


def test_no_answer_keeps_the_best_evidence(client: TestClient, demo_pipeline: QAPipeline) -> None:
    assert demo_pipeline.run(UNANSWERABLE).no_answer, "UNANSWERABLE must be unanswerable for this test"
    r = client.post("/ask", json={"question": UNANSWERABLE})
    assert r.status_code == 200
    body = r.json()
    assert body["no_answer"] is True
    assert body["answers"] == []
    assert len(body["passages"]) == demo_pipeline.settings.top_k
    assert all(p["text"] and p["doc_id"] for p in body["passages"])


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"question": ""}, "question", "at least 1"),
        ({"question": " \n\t "}, "question", "empty"),
        ({"question": "x" * 2001}, "question", "limit is 2000"),
        ({"question": 42}, "question", "valid string"),
        ({"question": None}, "question", "valid string"),
        ({"question": ["a"]}, "question", "valid string"),
        ({}, "question", "required"),
        ({"question": "q", "top_k": 0}, "top_k", "greater than or equal to 1"),
        ({"question": "q", "top_k": 51}, "top_k", "less than or equal to 50"),
        ({"question": "q", "top_k": "5"}, "top_k", "valid integer"),
        ({"question": "q", "top_k": 2.5}, "top_k", "valid integer"),
        ({"question": "q", "top_k": True}, "top_k", "valid integer"),
        ({"question": "q", "top_k": 10**30}, "top_k", "less than or equal to 50"),
        ({"question": "q", "max_answers": 0}, "max_answers", "greater than or equal to 1"),
        ({"question": "q", "max_answers": 21}, "max_answers", "less than or equal to 20"),
        ({"question": "q", "retriever": "sparse"}, "retriever", "'dense', 'bm25' or 'hybrid'"),
        ({"question": "q", "retriever": 1}, "retriever", "'dense', 'bm25' or 'hybrid'"),
        ({"question": "q", "reader": "oracle"}, "reader", "'heuristic'"),
        ({"question": "q", "topk": 3}, "topk", "unknown field"),
    ],
)
def test_bad_fields_get_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str, words: str) -> None:
    r = client.post("/ask", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert field in fields(r)
    assert any(words in d["msg"] for d in detail if d["field"] == field), detail
    assert r.json()["request_id"] == r.headers["X-Request-ID"]


def test_question_limit_is_configurable(make_client: Callable[..., TestClient]) -> None:
    short = make_client(question_max_chars=20)
    r = short.post("/ask", json={"question": "What is sorafenib used for?"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "question"
    assert "limit is 20" in r.json()["detail"][0]["msg"]
    assert short.post("/ask", json={"question": "What is sorafenib?"}).status_code == 200


@pytest.fixture(scope="module")
def no_model_client(make_client: Callable[..., TestClient], demo_pipeline: QAPipeline, demo_settings) -> TestClient:
    """The demo index served by a pipeline whose reader model folder is missing: only the heuristic reader runs."""
    from qa.readers.base import ReaderKind
    from service.app import create_app
    from tests.service.helpers import service_settings

    missing = QAPipeline(
        demo_pipeline.settings.model_copy(update={"reader_model": "/nonexistent/reader"}),
        embedder=demo_pipeline.embedder,
    )
    missing.swap_index(demo_pipeline.snapshot)
    missing._readers[ReaderKind.HEURISTIC] = demo_pipeline.reader(ReaderKind.HEURISTIC)
    return make_client(app=create_app(service_settings(demo_settings), pipeline=missing))


def test_unconfigured_reader_is_a_422_on_reader(no_model_client: TestClient) -> None:
    r = no_model_client.post("/ask", json={"question": STRIDE, "reader": "transformers"})
    assert r.status_code == 422
    assert fields(r) == ["reader"]
    assert "transformers" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("content", "content_type", "words"),
    [
        (b'{"question": ', "application/json", "malformed JSON"),
        (b'{"question": "q",}', "application/json", "malformed JSON"),
        (b"\xff\xfe\x00garbage", "application/json", None),
        (b"[" * 100_000, "application/json", None),
        (b'["q"]', "application/json", "JSON object"),
        (b'"just a string"', "application/json", "JSON object"),
        (b'{"question": "q"}', "text/plain", "JSON object"),
        (b"question=q", "application/x-www-form-urlencoded", "JSON object"),
        (b"", "application/json", "required"),
    ],
)
def test_malformed_bodies_get_4xx(client: TestClient, content: bytes, content_type: str, words: str | None) -> None:
    r = client.post("/ask", content=content, headers={"Content-Type": content_type})
    assert 400 <= r.status_code < 500, r.text
    if words:
        assert words in r.text


def test_lone_surrogates_and_control_characters_are_not_a_500(client: TestClient) -> None:
    r = client.post(
        "/ask", content='{"question": "What \\ud800 is HCC?"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert fields(r) == ["question"]
    r = client.post("/ask", json={"question": "\x00\x01\x7f"})
    assert r.status_code == 200


def test_wrong_method_and_unknown_path(client: TestClient) -> None:
    assert client.get("/ask").status_code == 405
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.json()["detail"] == "Not Found"


def test_batch_answers_in_order_as_single_asks_do(client: TestClient, demo_pipeline: QAPipeline) -> None:
    questions = [STRIDE, UNANSWERABLE, "Which kinases does lenvatinib inhibit?"]
    r = client.post(
        "/ask/batch",
        json={"questions": [{"question": questions[0], "top_k": 2}, *({"question": q} for q in questions[1:])]},
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["question"] for x in results] == questions
    assert json_difference(without_timing(results[0]), expected_json(demo_pipeline, questions[0], top_k=2)) is None
    for q, x in zip(questions[1:], results[1:], strict=True):
        assert json_difference(without_timing(x), expected_json(demo_pipeline, q)) is None
    assert r.json()["took_ms"] > 0


def test_batch_is_bounded(make_client: Callable[..., TestClient]) -> None:
    small = make_client(batch_max=2)
    r = small.post("/ask/batch", json={"questions": [{"question": "q"}] * 3})
    assert r.status_code == 422
    assert fields(r) == ["questions"]
    assert "limit is 2" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"questions": []}, "questions"),
        ({"questions": "What is HCC?"}, "questions"),
        ({}, "questions"),
        ({"questions": [{"question": "What is HCC?"}, {"question": "   "}]}, "questions[1].question"),
        ({"questions": [{"question": "What is HCC?"}, {"question": "q", "top_k": 99}]}, "questions[1].top_k"),
        ({"questions": [{"question": "x" * 2001}]}, "questions[0].question"),
        ({"questions": [{"question": "q", "reader": "transformers"}]}, "questions[0].reader"),
    ],
)
def test_batch_errors_name_the_item_and_field(
    client: TestClient, no_model_client: TestClient, body: dict[str, Any], field: str
) -> None:
    r = (no_model_client if field.endswith(".reader") else client).post("/ask/batch", json=body)
    assert r.status_code == 422, r.text
    assert field in fields(r)


def server_timing(response: Any) -> dict[str, float]:
    from eval.bench.latency import parse_server_timing

    return parse_server_timing(response.headers.get("server-timing"))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ask", {"question": STRIDE}),
        ("/ask", {"question": STRIDE, "retriever": "bm25"}),
        ("/ask/batch", {"questions": [{"question": STRIDE}, {"question": UNANSWERABLE, "retriever": "dense"}]}),
    ],
)
def test_server_timing_splits_the_request_into_its_stages(client: TestClient, path: str, body: dict[str, Any]) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 200
    timing = server_timing(r)
    assert list(timing) == ["embed", "search", "read", "serialise", "total"]
    assert all(v >= 0 for v in timing.values())
    assert timing["read"] > 0 and timing["serialise"] > 0
    assert timing["total"] >= timing["read"] + timing["serialise"]


def test_errors_carry_no_server_timing(client: TestClient) -> None:
    r = client.post("/ask", json={"question": "   "})
    assert r.status_code == 422 and "server-timing" not in r.headers
