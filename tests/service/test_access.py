"""API key, CORS, body-size limits, request ids with JSON access logs, and the last-resort 500 handler."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from qa.pipeline import QAPipeline
from qa.settings import Settings
from service.app import create_app
from service.log import ACCESS_LOGGER, JsonFormatter
from tests.service.helpers import STRIDE, service_settings

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def keyed(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(api_key="s3cret-key")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/ask", {"question": STRIDE}),
        ("POST", "/ask/batch", {"questions": [{"question": STRIDE}]}),
        ("GET", "/documents/abs-02", None),
        ("GET", "/ready", None),
        ("GET", "/openapi.json", None),
        ("GET", "/docs", None),
        ("GET", "/redoc", None),
    ],
)
def test_api_key_guards_every_endpoint_but_health(keyed: TestClient, method: str, path: str, body: object) -> None:
    assert keyed.request(method, path, json=body).status_code == 401
    r = keyed.request(method, path, json=body, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401
    assert "X-API-Key" in r.json()["detail"]
    assert keyed.request(method, path, json=body, headers={"X-API-Key": "s3cret-key-and-more"}).status_code == 401
    assert keyed.request(method, path, json=body, headers={"X-API-Key": "s3cret-key"}).status_code == 200


def test_non_ascii_api_key_compares_as_utf8_bytes(make_client: Callable[..., TestClient]) -> None:
    c = make_client(api_key="ключ-42")
    body = {"question": STRIDE}
    assert c.post("/ask", json=body, headers={"X-API-Key": "ключ-42".encode()}).status_code == 200
    assert c.post("/ask", json=body, headers={"X-API-Key": "ключ-43".encode()}).status_code == 401


def test_api_key_leaves_liveness_and_the_static_page_open(keyed: TestClient) -> None:
    """The page and its assets are the same bytes in every deployment and carry no data; the data needs the key."""
    assert keyed.get("/health").status_code == 200
    assert keyed.get("/").status_code == 200
    assert keyed.get("/static/app.js").status_code == 200
    r = keyed.get("/ready", headers={"X-API-Key": "s3cret-key"})
    assert r.status_code == 200
    assert r.json()["api_key_required"] is True


def test_api_key_is_documented_in_openapi(keyed: TestClient) -> None:
    spec = keyed.get("/openapi.json", headers={"X-API-Key": "s3cret-key"}).json()
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("name") == "X-API-Key" and s.get("in") == "header" for s in schemes.values())
    assert set(spec["paths"]) >= {"/ask", "/ask/batch", "/documents/{doc_id}", "/health", "/ready"}


def test_cors_is_off_by_default(client: TestClient) -> None:
    r = client.post("/ask", json={"question": STRIDE}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_allows_only_configured_origins(make_client: Callable[..., TestClient]) -> None:
    c = make_client(cors_origins=["https://app.example"])
    pre = c.options(
        "/ask",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-api-key" in pre.headers["access-control-allow-headers"].lower()
    r = c.post("/ask", json={"question": STRIDE}, headers={"Origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    other = c.post("/ask", json={"question": STRIDE}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    bad = c.options("/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert bad.status_code == 400


def test_body_over_the_limit_by_content_length_is_413(make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_body_bytes=4096)
    r = c.post("/ask", content=b"x" * 5000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "4096" in r.json()["detail"]
    ok = c.post("/ask", json={"question": STRIDE + " " * 3000})
    assert ok.status_code == 200


def test_streamed_body_over_the_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_body_bytes=4096)

    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    r = c.post("/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413


def test_streamed_body_under_the_limit_is_answered(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": '
        yield json.dumps(STRIDE).encode()
        yield b"}"

    r = client.post("/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.json()["answers"][0]["text"] == "16.43 months"


def test_non_numeric_content_length_is_400(client: TestClient) -> None:
    r = client.post(
        "/ask", content=b'{"question": "q"}', headers={"Content-Type": "application/json", "Content-Length": "12x"}
    )
    assert r.status_code == 400


def test_each_request_gets_an_id_and_one_json_log_line(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        ok = client.post("/ask", json={"question": STRIDE})
        bad = client.post("/ask", json={"question": ""})
        mine = client.get("/health", headers={"X-Request-ID": "client-id-42"})
        junk = client.get("/health", headers={"X-Request-ID": "<script>" + "x" * 100})
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(records) == 4
    ids = [ok.headers["X-Request-ID"], bad.headers["X-Request-ID"], "client-id-42", junk.headers["X-Request-ID"]]
    assert mine.headers["X-Request-ID"] == "client-id-42"
    assert "<script>" not in junk.headers["X-Request-ID"]
    assert len(set(ids)) == 4
    assert [r.request_id for r in records] == ids
    assert [r.status for r in records] == [200, 422, 200, 200]
    assert [r.path for r in records] == ["/ask", "/ask", "/health", "/health"]
    assert all(r.duration_ms >= 0 for r in records)
    line = json.loads(JsonFormatter().format(records[0]))
    assert {"ts", "level", "msg", "request_id", "method", "path", "status", "duration_ms"} <= set(line)
    assert line["status"] == 200
    assert line["method"] == "POST"


def test_unexpected_errors_are_a_generic_500_logged_with_the_request_id(
    demo_settings: Settings, demo_pipeline: QAPipeline, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(service_settings(demo_settings), pipeline=demo_pipeline)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level(logging.INFO):
        r = c.get("/boom")
    assert r.status_code == 500
    body = r.json()
    assert "secret internals" not in r.text
    assert body["detail"].startswith("internal server error")
    assert body["request_id"] == r.headers["X-Request-ID"]
    errors = [x for x in caplog.records if x.getMessage() == "unhandled error"]
    assert errors
    assert errors[0].request_id == body["request_id"]
    assert "secret internals" in str(errors[0].exc_info[1])
    access = [x for x in caplog.records if x.name == ACCESS_LOGGER]
    assert access[-1].status == 500
