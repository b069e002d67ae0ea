"""GET /documents/{id}, /health and /ready, including readiness while the pipeline loads in the background."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from index.embedder import Embedder
from qa.pipeline import QAPipeline
from qa.settings import Settings
from service.app import create_app
from tests.service.helpers import STRIDE, service_settings

pytestmark = pytest.mark.model


def test_document_returns_the_text_answers_point_into(client: TestClient, demo_pipeline: QAPipeline) -> None:
    answer = client.post("/ask", json={"question": STRIDE}).json()["answers"][0]
    r = client.get(f"/documents/{answer['doc_id']}")
    assert r.status_code == 200
    doc = r.json()
    source = demo_pipeline.index.documents[answer["doc_id"]]
    assert doc == {"id": source.id, "title": source.title, "text": source.text, "meta": source.meta}
    assert doc["text"][answer["start"] : answer["end"]] == "16.43 months"


@pytest.mark.parametrize("doc_id", ["abs-999", "ABS-02", "abs-02 ", "..%2F..%2Fetc%2Fpasswd", "%ED%A0%80", "x" * 500])
def test_unknown_document_is_404_naming_it(client: TestClient, doc_id: str) -> None:
    r = client.get(f"/documents/{doc_id}")
    assert r.status_code == 404
    assert "unknown document id" in r.json()["detail"]


def test_health_is_alive(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_ready_reports_the_loaded_manifest(client: TestClient, demo_pipeline: QAPipeline) -> None:
    r = client.get("/ready")
    assert r.status_code == 200
    body = r.json()
    manifest = demo_pipeline.index.manifest
    assert body["status"] == "ready"
    assert body["fingerprint"] == manifest.fingerprint
    assert body["model"]["name"] == manifest.model.name
    assert body["corpus"]["n_documents"] == manifest.corpus.n_documents == len(demo_pipeline.index.documents)
    assert body["corpus"]["n_chunks"] == manifest.corpus.n_chunks
    assert body["defaults"]["top_k"] == demo_pipeline.settings.top_k
    assert set(body["retrievers"]) == {"dense", "bm25", "hybrid"}
    assert set(body["readers"]) == {"heuristic", "transformers", "combined"}  # the shipped model is there
    assert body["defaults"]["reader"] in body["readers"]
    assert body["api_key_required"] is False


def test_ready_offers_only_readers_the_service_can_load(demo_pipeline, tmp_path) -> None:
    from qa.pipeline import QAPipeline

    missing = QAPipeline(demo_pipeline.settings.model_copy(update={"reader_model": str(tmp_path / "no-model")}))
    assert missing.available_readers() == ["heuristic"]


class GatedPipeline(QAPipeline):
    """A real pipeline whose warm-up waits for the test, so the 'still loading' state can be observed."""

    def __init__(self, settings: Settings, embedder: Embedder, gate: threading.Event, fail: bool = False) -> None:
        super().__init__(settings)
        self.embedder = embedder
        self.gate = gate
        self.fail = fail

    def warm_up(self, build_if_missing: bool = False, say: Callable[[str], None] = lambda _m: None) -> None:
        assert self.gate.wait(60)
        if self.fail:
            raise RuntimeError("disk on fire")
        super().warm_up(build_if_missing=build_if_missing, say=say)


def wait_ready(client: TestClient, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/ready")
        if r.status_code != 503 or r.json()["status"] == "failed":
            return r
        time.sleep(0.1)
    raise AssertionError("never ready")


def test_background_load_builds_the_index_on_first_run(
    demo_settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """/health answers while loading; /ready and /ask say 503; then the fresh index is built and served."""
    settings = service_settings(demo_settings, index_dir=tmp_path / "fresh", warm_up_in_background=True)
    gate = threading.Event()
    app = create_app(settings, pipeline=GatedPipeline(settings, embedder, gate))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        r = client.get("/ready")
        assert r.status_code == 503
        assert r.json()["status"] == "loading"
        r = client.post("/ask", json={"question": STRIDE})
        assert r.status_code == 503
        assert "loading" in r.json()["detail"]
        assert r.headers["Retry-After"] == "5"
        gate.set()
        assert wait_ready(client).status_code == 200
        assert (tmp_path / "fresh").is_dir()
        assert client.post("/ask", json={"question": STRIDE}).json()["answers"][0]["text"] == "16.43 months"


def test_failed_background_load_is_reported(demo_settings: Settings, embedder: Embedder) -> None:
    settings = service_settings(demo_settings, warm_up_in_background=True)
    gate = threading.Event()
    gate.set()
    app = create_app(settings, pipeline=GatedPipeline(settings, embedder, gate, fail=True))
    with TestClient(app) as client:
        r = wait_ready(client)
        assert r.status_code == 503
        assert r.json() == {"status": "failed", "detail": "RuntimeError: disk on fire"}
        r = client.post("/ask", json={"question": STRIDE})
        assert r.status_code == 503
        assert "disk on fire" in r.json()["detail"]
        assert client.get("/health").status_code == 200


def test_failed_foreground_load_stops_start_up(demo_settings: Settings, embedder: Embedder) -> None:
    settings = service_settings(demo_settings)
    gate = threading.Event()
    gate.set()
    app = create_app(settings, pipeline=GatedPipeline(settings, embedder, gate, fail=True))
    with pytest.raises(RuntimeError, match="disk on fire"), TestClient(app):
        pass
