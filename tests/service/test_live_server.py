"""A real uvicorn on loopback: 8 concurrent clients x 50 requests, no errors, answers identical to in-process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from qa.pipeline import QAPipeline
from tests.service.helpers import QUESTIONS, LiveServer, expected_json, json_difference, without_timing

pytestmark = [pytest.mark.model, pytest.mark.slow]

CLIENTS = 8
REQUESTS_PER_CLIENT = 50


def test_concurrent_clients_get_the_in_process_answers(live_server: LiveServer, demo_pipeline: QAPipeline) -> None:
    expected = {q: expected_json(demo_pipeline, q) for q in QUESTIONS}
    failures: list[str] = []
    done = 0
    lock = threading.Lock()
    stop_probe = threading.Event()
    probe_ms: list[float] = []

    def one_client(i: int) -> None:
        nonlocal done
        with httpx.Client(base_url=live_server.url, timeout=120) as c:
            for j in range(REQUESTS_PER_CLIENT):
                q = QUESTIONS[(i + j) % len(QUESTIONS)]
                try:
                    r = c.post("/ask", json={"question": q})
                except httpx.HTTPError as err:
                    failures.append(f"client {i} request {j}: {err!r}")
                    continue
                if r.status_code != 200:
                    failures.append(f"client {i} request {j}: {r.status_code} {r.text[:200]}")
                elif without_timing(r.json()) != expected[q]:
                    failures.append(f"client {i} request {j}: answer differs for {q!r}")
                with lock:
                    done += 1

    def probe() -> None:
        """/health while the pool is busy: the event loop must stay free (CPU work runs in threads)."""
        with httpx.Client(base_url=live_server.url, timeout=60) as c:
            while not stop_probe.is_set():
                t0 = time.perf_counter()
                assert c.get("/health").status_code == 200
                probe_ms.append((time.perf_counter() - t0) * 1000)
                stop_probe.wait(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one_client, range(CLIENTS)))
    stop_probe.set()
    prober.join(timeout=30)

    assert failures == []
    assert done == CLIENTS * REQUESTS_PER_CLIENT
    assert probe_ms, "the health probe never ran"
    # A health check waits behind at most a GIL slice, never behind a whole question (that takes ~100 ms+).
    assert sorted(probe_ms)[len(probe_ms) // 2] < 250, f"median /health latency under load {probe_ms}"


def test_live_batch_and_documents(live_server: LiveServer, demo_pipeline: QAPipeline) -> None:
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        r = c.post("/ask/batch", json={"questions": [{"question": q} for q in QUESTIONS[:3]]})
        assert r.status_code == 200
        got = [without_timing(x) for x in r.json()["results"]]
        assert json_difference(got, [expected_json(demo_pipeline, q) for q in QUESTIONS[:3]]) is None
        a = r.json()["results"][0]["answers"][0]
        doc = c.get(f"/documents/{a['doc_id']}").json()
        assert doc["text"][a["start"] : a["end"]] == a["text"]


def test_live_server_rejects_a_streamed_oversized_body(live_server: LiveServer) -> None:
    """Over a real socket, chunked transfer with no Content-Length: cut off at the limit with 413."""

    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(400):
            yield b"a" * 1024
        yield b'"}'

    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        r = c.post("/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
