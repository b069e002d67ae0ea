"""The admin endpoints: always behind a key, every refusal named, updates and reloads served at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from index.store import current_version
from index.updates import CorpusUpdate, apply_update
from qa.pipeline import QAPipeline
from qa.settings import Settings
from service.app import create_app
from tests.service.helpers import STRIDE, service_settings

pytestmark = pytest.mark.model

KEY = "reader-key"
ADMIN = "admin-key"


@pytest.fixture
def admin_client(
    copy_demo_index: Callable[[str], Path], make_pipeline: Callable[..., QAPipeline], demo_settings: Settings
) -> Iterator[Callable[..., TestClient]]:
    """`admin_client(**settings)`: a client over a private copy of the demo index (admin calls change it)."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        index_dir = copy_demo_index("admin")
        app = create_app(service_settings(demo_settings, index_dir=index_dir, **overrides), make_pipeline(index_dir))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.mark.parametrize("path", ["/admin/reload", "/admin/documents"])
def test_admin_is_disabled_without_any_key(admin_client: Callable[..., TestClient], path: str) -> None:
    c = admin_client()
    for headers in ({}, {"X-API-Key": "anything"}):
        r = c.post(path, json={"delete": ["abs-01"]}, headers=headers)
        assert r.status_code == 403
        assert "QA_ADMIN_API_KEY" in r.json()["detail"]
    assert c.post("/ask", json={"question": STRIDE}).status_code == 200  # the rest stays open


def test_admin_uses_the_api_key_when_no_admin_key_is_set(admin_client: Callable[..., TestClient]) -> None:
    c = admin_client(api_key=KEY)
    assert c.post("/admin/reload").status_code == 401
    assert c.post("/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 401
    r = c.post("/admin/reload", headers={"X-API-Key": KEY})
    assert r.status_code == 200
    assert r.json()["changed"] is False


def test_a_separate_admin_key_is_the_only_key_to_admin_and_opens_nothing_else(
    admin_client: Callable[..., TestClient],
) -> None:
    c = admin_client(api_key=KEY, admin_api_key=ADMIN)
    r = c.post("/admin/reload", headers={"X-API-Key": KEY})
    assert r.status_code == 401 and "admin key" in r.json()["detail"]
    assert c.post("/admin/reload", headers={"X-API-Key": ADMIN}).status_code == 200
    assert c.post("/ask", json={"question": STRIDE}, headers={"X-API-Key": ADMIN}).status_code == 401
    assert c.post("/ask", json={"question": STRIDE}, headers={"X-API-Key": KEY}).status_code == 200


def test_admin_only_key_leaves_data_open_and_admin_closed(admin_client: Callable[..., TestClient]) -> None:
    c = admin_client(admin_api_key=ADMIN)
    assert c.post("/ask", json={"question": STRIDE}).status_code == 200
    assert c.post("/admin/reload").status_code == 401


def test_the_key_is_checked_before_the_body_is_read(admin_client: Callable[..., TestClient]) -> None:
    """A keyless client learns nothing, not even that its JSON is malformed or a path does not exist."""
    c = admin_client(api_key=KEY)
    json_type = {"Content-Type": "application/json"}
    assert c.post("/ask", content=b"{not json", headers=json_type).status_code == 401
    assert c.post("/ask", content=b"{not json", headers={**json_type, "X-API-Key": KEY}).status_code == 422
    assert c.get("/no/such/path").status_code == 401
    assert c.get("/no/such/path", headers={"X-API-Key": KEY}).status_code == 404
    assert c.post("/admin/documents", content=b"{not json", headers=json_type).status_code == 401
    assert c.options("/ask").status_code == 401  # only a CORS preflight passes without the key
    r = c.get("/ready")
    assert r.status_code == 401 and r.json()["request_id"] == r.headers["X-Request-ID"]


def test_update_adds_replaces_and_deletes_and_is_served_at_once(admin_client: Callable[..., TestClient]) -> None:
    c = admin_client(api_key=KEY)
    h = {"X-API-Key": KEY}
    before = c.get("/ready", headers=h).json()
    abs02 = c.get("/documents/abs-02", headers=h).json()
    body = {
        "upsert": [
            {"id": "new-1", "text": "Tivozanib is a VEGFR inhibitor given for 21 days.", "title": "Tivozanib"},
            {"id": "abs-02", "text": abs02["text"].replace("16.43 months", "17.25 months"), "title": abs02["title"]},
        ],
        "delete": ["abs-20"],
    }
    r = c.post("/admin/documents", json=body, headers=h)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["added"], out["replaced"], out["deleted"], out["unchanged"]) == (["new-1"], ["abs-02"], ["abs-20"], [])
    assert out["previous_fingerprint"] == before["fingerprint"] != out["fingerprint"]
    assert out["n_documents"] == before["corpus"]["n_documents"]
    assert out["embedded_chunks"] > 0 and out["reused_chunks"] > out["embedded_chunks"]
    after = c.get("/ready", headers=h).json()
    assert after["fingerprint"] == out["fingerprint"]
    assert c.get("/documents/abs-20", headers=h).status_code == 404
    assert c.get("/documents/new-1", headers=h).json()["title"] == "Tivozanib"
    answer = c.post("/ask", json={"question": STRIDE}, headers=h).json()
    assert answer["index_fingerprint"] == out["fingerprint"]
    assert answer["answers"][0]["text"] == "17.25 months"
    # The same update again changes nothing and publishes nothing.
    again = c.post("/admin/documents", json={"upsert": body["upsert"]}, headers=h).json()
    assert again["changed"] is False and sorted(again["unchanged"]) == ["abs-02", "new-1"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "body", "nothing to do"),
        ({"upsert": [], "delete": []}, "body", "nothing to do"),
        ({"delete": ["no-such-doc"]}, "delete", "unknown document ids: 'no-such-doc'"),
        ({"delete": ["abs-01", "abs-01"]}, "delete", "given twice"),
        ({"upsert": [{"id": "abs-01", "text": "x"}], "delete": ["abs-01"]}, "delete", "both added and deleted"),
        ({"upsert": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "upsert", "given twice"),
        ({"upsert": [{"id": "a", "text": " \n "}]}, "upsert[0].text", "empty"),
        ({"upsert": [{"id": " ", "text": "x"}]}, "upsert[0].id", "empty"),
        ({"upsert": [{"id": "a", "text": "lone \ud800 surrogate"}]}, "upsert[0].text", "nicode"),
        ({"upsert": [{"id": "a", "text": "x", "path": "/etc/passwd"}]}, "upsert[0].path", "unknown field"),
        ({"delete": [f"d{i}" for i in range(5)]}, "body", "the limit is 4 per call"),
        ({"upsert": [{"id": "x" * 201, "text": "x"}]}, "upsert[0].id", "at most 200"),
    ],
)
def test_bad_updates_are_a_422_naming_the_field_and_change_nothing(
    admin_client: Callable[..., TestClient], body: dict[str, Any], field: str, words: str
) -> None:
    c = admin_client(api_key=KEY, update_max_documents=4)
    h = {"X-API-Key": KEY}
    before = c.get("/ready", headers=h).json()["fingerprint"]
    # json.dumps escapes a lone surrogate as "\ud800", as a hostile client would send it
    r = c.post("/admin/documents", content=json.dumps(body), headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["field"] == field
    assert words in detail[0]["msg"]
    assert c.get("/ready", headers=h).json()["fingerprint"] == before


def test_a_second_change_while_one_runs_is_told_to_retry(admin_client: Callable[..., TestClient]) -> None:
    c = admin_client(api_key=KEY)
    lock: threading.Lock = c.app.state.service.admin_lock  # type: ignore[attr-defined]
    with lock:  # as if an update were running
        r = c.post("/admin/reload", headers={"X-API-Key": KEY})
    assert r.status_code == 409
    assert "in progress" in r.json()["detail"] and r.headers["Retry-After"]
    assert c.post("/admin/reload", headers={"X-API-Key": KEY}).status_code == 200


def test_reload_reports_the_damaged_file_and_keeps_serving(admin_client: Callable[..., TestClient]) -> None:
    c = admin_client(api_key=KEY)
    h = {"X-API-Key": KEY}
    pipeline: QAPipeline = c.app.state.service.pipeline  # type: ignore[attr-defined]
    index_dir = Path(pipeline.settings.index_dir)
    serving = c.get("/ready", headers=h).json()["fingerprint"]
    # Publish a new version behind the service's back (as `qa index` would), then damage it before the reload.
    apply_update(index_dir, CorpusUpdate(delete=["abs-20"]), None, pipeline.settings.index_config())
    damaged = current_version(index_dir)
    assert damaged is not None
    (damaged / "chunks.jsonl").write_bytes((damaged / "chunks.jsonl").read_bytes()[:-10])
    r = c.post("/admin/reload", headers=h)
    assert r.status_code == 503
    assert "chunks.jsonl" in r.json()["detail"] and f"still serving {serving}" in r.json()["detail"]
    assert c.get("/ready", headers=h).json()["fingerprint"] == serving
    assert c.post("/ask", json={"question": STRIDE}, headers=h).json()["index_fingerprint"] == serving
