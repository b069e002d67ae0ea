"""Hot index swap: a new index is served without a restart, and no answer ever mixes two indexes.

Two versions live in one index directory: A (the demo corpus) and B (A with abs-02's survival figure changed, a
document added and one deleted, made by an incremental update). Clients hammer the service while it switches
between them; every response must be wholly the in-process answer of the one index its fingerprint names.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from index.documents import Document
from index.errors import IndexCorruptError
from index.store import current_version, publish_version
from index.updates import CorpusUpdate, apply_update
from qa.pipeline import IndexSnapshot, QAPipeline
from qa.settings import Settings
from service.app import create_app
from tests.service.helpers import QUESTIONS, STRIDE, LiveServer, json_difference, service_settings

pytestmark = pytest.mark.model

KEY = "swap-key"
NEW_DOC = Document(
    "new-01",
    "In the CELESTIAL trial, cabozantinib improved median progression-free survival to 5.2 months versus 1.9 "
    "months with placebo in previously treated hepatocellular carcinoma.",
    title="Cabozantinib in CELESTIAL",
)
NEW_QUESTION = "What was the median progression-free survival with cabozantinib in CELESTIAL?"
ASKED = [*QUESTIONS, NEW_QUESTION]


@dataclass
class TwoVersions:
    index_dir: Path
    a: str  # version folder names
    b: str


def changed_abs02(pipeline: QAPipeline) -> Document:
    old = pipeline.index.documents["abs-02"]
    assert "16.43 months" in old.text
    return Document(old.id, old.text.replace("16.43 months", "17.25 months"), old.title, old.meta)


@pytest.fixture(scope="module")
def versions(copy_demo_index: Callable[[str], Path], demo_pipeline: QAPipeline, embedder: Any) -> TwoVersions:
    index_dir = copy_demo_index("swap")
    a = current_version(index_dir)
    assert a is not None
    update = CorpusUpdate(upsert=[changed_abs02(demo_pipeline), NEW_DOC], delete=["abs-19"])
    result = apply_update(index_dir, update, embedder, demo_pipeline.settings.index_config())
    assert result.changed
    return TwoVersions(index_dir, a.name, result.version.name)


def answer(pipeline: QAPipeline, snapshot: IndexSnapshot, question: str) -> dict[str, Any]:
    out = pipeline.run(question, snapshot=snapshot).to_dict()
    out.pop("took_ms")
    assert out["index_fingerprint"] == snapshot.fingerprint  # the result names the snapshot that answered it
    return out


def test_the_two_versions_answer_differently(versions: TwoVersions, make_pipeline: Callable[..., QAPipeline]) -> None:
    """Otherwise the mixing checks below could not tell the indexes apart. The heuristic reader reads the changed
    figure in both versions; these tests are about which index answers, not about reading."""
    publish_version(versions.index_dir, versions.a)
    pipeline = make_pipeline(versions.index_dir, reader="heuristic")
    snap_a = pipeline.snapshot
    publish_version(versions.index_dir, versions.b)
    old, snap_b = pipeline.reload_index()
    assert old is snap_a and snap_b is not snap_a and snap_b.fingerprint != snap_a.fingerprint
    assert answer(pipeline, snap_a, STRIDE)["answers"][0]["text"] == "16.43 months"
    assert answer(pipeline, snap_b, STRIDE)["answers"][0]["text"] == "17.25 months"
    assert "abs-19" in snap_a.index.documents and "abs-19" not in snap_b.index.documents
    assert answer(pipeline, snap_b, NEW_QUESTION)["answers"][0]["doc_id"] == "new-01"


def test_reload_is_a_no_op_while_current_is_unchanged(
    versions: TwoVersions, make_pipeline: Callable[..., QAPipeline]
) -> None:
    publish_version(versions.index_dir, versions.a)
    pipeline = make_pipeline(versions.index_dir)
    before = pipeline.snapshot
    assert pipeline.reload_index() == (before, before)


def test_a_damaged_new_index_is_refused_and_the_old_one_keeps_serving(
    versions: TwoVersions, make_pipeline: Callable[..., QAPipeline], tmp_path: Path
) -> None:
    index_dir = tmp_path / "idx"
    shutil.copytree(versions.index_dir, index_dir)
    publish_version(index_dir, versions.a)
    pipeline = make_pipeline(index_dir)
    before = pipeline.snapshot
    publish_version(index_dir, versions.b)
    faiss_file = index_dir / "versions" / versions.b / "dense.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    faiss_file.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=r"dense\.faiss"):
        pipeline.reload_index()
    assert pipeline.snapshot is before
    assert pipeline.run(STRIDE).index_fingerprint == before.fingerprint


def test_in_process_swaps_while_threads_answer_never_mix_indexes(
    versions: TwoVersions, make_pipeline: Callable[..., QAPipeline]
) -> None:
    """Hundreds of swaps under four answering threads: each result is wholly one index's answer."""
    publish_version(versions.index_dir, versions.a)
    pipeline = make_pipeline(versions.index_dir)
    publish_version(versions.index_dir, versions.b)
    snaps = dict(zip("ab", pipeline.reload_index(), strict=True))
    assert snaps["a"] is not None
    expected = {s.fingerprint: {q: answer(pipeline, s, q) for q in ASKED} for s in snaps.values()}
    stop = threading.Event()
    seen: Counter[str] = Counter()
    wrong: list[str] = []

    def ask(worker: int) -> None:
        rng = random.Random(worker)
        while not stop.is_set():
            q = rng.choice(ASKED)
            result = pipeline.run(q)
            out = result.to_dict()
            out.pop("took_ms")
            out["index_fingerprint"] = result.index_fingerprint
            seen[result.index_fingerprint or ""] += 1
            if out != expected.get(result.index_fingerprint or "", {}).get(q):
                wrong.append(f"{q!r} from {result.index_fingerprint}")

    swaps = 0
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ask, i) for i in range(4)]
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline or swaps < 100:
            pipeline.swap_index(snaps["b" if swaps % 2 == 0 else "a"])
            swaps += 1
            time.sleep(0.02)
        stop.set()
        for f in futures:
            f.result()
    assert wrong == []
    assert set(seen) == set(expected), "both indexes answered"
    assert swaps >= 100
    print(f"\n{swaps} in-process swaps under 4 threads, {sum(seen.values())} answers, none mixed")


@pytest.fixture
def swap_server(
    versions: TwoVersions, make_pipeline: Callable[..., QAPipeline], demo_settings: Settings, tmp_path: Path
) -> Iterator[tuple[LiveServer, QAPipeline, Path]]:
    """A live keyed service over a private copy of the two versions, serving A."""
    index_dir = tmp_path / "index"
    shutil.copytree(versions.index_dir, index_dir)
    publish_version(index_dir, versions.a)
    pipeline = make_pipeline(index_dir, reader="heuristic")  # which index answered is told by the changed figure
    app = create_app(
        service_settings(demo_settings, index_dir=index_dir, api_key=KEY, ask_concurrency=4), pipeline=pipeline
    )
    with LiveServer(app) as server:
        yield server, pipeline, index_dir


@pytest.mark.slow
def test_swaps_under_http_load_fail_no_request_and_mix_no_index(
    versions: TwoVersions, swap_server: tuple[LiveServer, QAPipeline, Path]
) -> None:
    """6 clients ask and batch-ask over HTTP while /admin/reload switches A <-> B every ~0.3 s."""
    server, pipeline, index_dir = swap_server
    snaps: dict[str, IndexSnapshot] = {pipeline.snapshot.fingerprint: pipeline.snapshot}
    responses: list[tuple[str, dict[str, Any]]] = []
    failures: list[str] = []
    stop = threading.Event()
    headers = {"X-API-Key": KEY}

    def client(worker: int) -> None:
        rng = random.Random(worker)
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
            while not stop.is_set():
                try:
                    if worker == 0:
                        qs = rng.sample(ASKED, 3)
                        r = c.post("/ask/batch", json={"questions": [{"question": q} for q in qs]})
                    else:
                        qs = [rng.choice(ASKED)]
                        r = c.post("/ask", json={"question": qs[0]})
                except httpx.HTTPError as err:
                    failures.append(f"{worker}: {err!r}")
                    continue
                if r.status_code != 200:
                    failures.append(f"{worker}: {r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                results = body["results"] if worker == 0 else [body]
                if worker == 0 and {x["index_fingerprint"] for x in results} != {body["index_fingerprint"]}:
                    failures.append(f"a batch mixed indexes: {[x['index_fingerprint'] for x in results]}")
                for q, res in zip(qs, results, strict=True):
                    res.pop("took_ms")
                    responses.append((q, res))

    swaps = 0
    with ThreadPoolExecutor(6) as pool, httpx.Client(base_url=server.url, headers=headers, timeout=60) as admin:
        futures = [pool.submit(client, i) for i in range(6)]
        time.sleep(0.5)
        for i in range(12):
            target = versions.b if i % 2 == 0 else versions.a
            publish_version(index_dir, target)
            r = admin.post("/admin/reload")
            assert r.status_code == 200, r.text
            assert r.json()["changed"] is True
            snaps.setdefault(pipeline.snapshot.fingerprint, pipeline.snapshot)
            assert r.json()["fingerprint"] == pipeline.snapshot.fingerprint
            swaps += 1
            time.sleep(0.3)
        time.sleep(0.3)
        stop.set()
        for f in futures:
            f.result()

    assert failures == []
    assert len(snaps) == 2
    expected = {fp: {q: answer(pipeline, s, q) for q in ASKED} for fp, s in snaps.items()}
    by_index: Counter[str] = Counter()
    mixed = [
        f"{q!r} from {res['index_fingerprint']}"
        for q, res in responses
        if json_difference(res, expected.get(res["index_fingerprint"], {}).get(q)) is not None
    ]
    for _, res in responses:
        by_index[res["index_fingerprint"]] += 1
    assert mixed == []
    assert set(by_index) == set(snaps), f"answers came from both indexes: {by_index}"
    print(f"\n{swaps} swaps under 6 HTTP clients: {len(responses)} answers ({dict(by_index)}), 0 failed, 0 mixed")


@pytest.mark.slow
def test_document_update_under_http_load(swap_server: tuple[LiveServer, QAPipeline, Path]) -> None:
    """POST /admin/documents while clients ask: answers switch from the old index to the updated one, whole."""
    server, pipeline, _ = swap_server
    before = pipeline.snapshot
    responses: list[tuple[str, dict[str, Any]]] = []
    failures: list[str] = []
    stop = threading.Event()
    extra = Document("new-02", "Tivozanib is a VEGFR tyrosine kinase inhibitor given once daily for 21 days.")

    def client(worker: int) -> None:
        rng = random.Random(100 + worker)
        with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}, timeout=60) as c:
            while not stop.is_set():
                q = rng.choice(ASKED)
                r = c.post("/ask", json={"question": q})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                body.pop("took_ms")
                responses.append((q, body))

    with ThreadPoolExecutor(4) as pool, httpx.Client(base_url=server.url, timeout=120) as admin:
        futures = [pool.submit(client, i) for i in range(4)]
        time.sleep(0.5)
        r = admin.post(
            "/admin/documents",
            headers={"X-API-Key": KEY},
            json={"upsert": [{"id": extra.id, "text": extra.text}], "delete": ["abs-18"]},
        )
        time.sleep(1.0)
        stop.set()
        for f in futures:
            f.result()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["added"] == ["new-02"] and body["deleted"] == ["abs-18"] and body["changed"] is True
    assert body["previous_fingerprint"] == before.fingerprint
    after = pipeline.snapshot
    assert body["fingerprint"] == after.fingerprint != before.fingerprint
    assert body["embedded_chunks"] == len(after.index.chunks_of("new-02"))
    assert body["reused_chunks"] == len(after.index.chunks) - body["embedded_chunks"]
    assert failures == []
    expected = {s.fingerprint: {q: answer(pipeline, s, q) for q in ASKED} for s in (before, after)}
    assert [q for q, res in responses if res != expected[res["index_fingerprint"]][q]] == []
    assert {res["index_fingerprint"] for _, res in responses} == set(expected)
    assert "abs-18" not in after.index.documents and after.index.documents["new-02"].text == extra.text
