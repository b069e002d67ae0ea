"""Question latency: `/ask` on loopback as a client sees it, and where one request's time goes.

HTTP: the service runs in its own process (`qa serve --embedding-backend B`, `eval.bench.server`), one client
asks N questions in sequence (p50/p95/p99), then C clients at once (requests/s). Each response's
`Server-Timing` header splits it into embed (the question's vector), search (FAISS + BM25 + fusion), read
(document expansion, reader, ranking) and serialise (the response model built and dumped to JSON); their
medians are `sequential.server_timing_ms`. The split in-process (`split_ms`) times the same stages alone and
FAISS and BM25 apart. Client latency minus the server's `took_ms` is the HTTP cost.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from eval.bench.common import median, percentiles

INDEX_ROOT = Path("var/bench/indexes")


def ensure_bench_index(backend: str, onnx_cache_dir: Path | None = None) -> Path:
    """An index of the built-in corpus built by `backend` (an int8 index differs from a torch one)."""
    from index.errors import IndexNotFoundError
    from index.ingest import load_corpus
    from index.store import IndexConfig, build_index, read_manifest
    from qa.pipeline import build_embedder
    from qa.settings import BUILTIN_CORPUS, Settings
    from runtimes.onnx_export import DEFAULT_ONNX_CACHE

    index_dir = INDEX_ROOT / f"builtin-{backend}"
    try:
        read_manifest(index_dir)
        return index_dir
    except IndexNotFoundError:
        pass
    settings = Settings(_env_file=None, embedding_backend=backend, onnx_cache_dir=onnx_cache_dir or DEFAULT_ONNX_CACHE)
    embedder = build_embedder(settings)
    config: IndexConfig = settings.index_config()
    build_index(load_corpus(BUILTIN_CORPUS).documents, embedder, index_dir, config, source=str(BUILTIN_CORPUS))
    return index_dir


@contextmanager
def server(backend: str, index_dir: Path, log_path: Path, start_timeout: float = 600) -> Iterator[str]:
    """`qa serve --embedding-backend backend` over `index_dir` in a child process; yields its base URL when ready."""
    from eval.bench.server import serve
    from runtimes.onnx_export import DEFAULT_ONNX_CACHE

    env = {"QA_ONNX_CACHE_DIR": str(DEFAULT_ONNX_CACHE)}  # the export ensure_bench_index made, not a second one
    with serve(log_path, index_dir, backend, env, start_timeout=start_timeout) as served:
        yield served.url


def parse_server_timing(header: str | None) -> dict[str, float]:
    """`embed;dur=3.1, search;dur=0.5` -> {"embed": 3.1, "search": 0.5}; metrics without a duration are skipped."""
    out: dict[str, float] = {}
    for metric in (header or "").split(","):
        name, *params = (p.strip() for p in metric.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if name and key.strip() == "dur":
                with suppress(ValueError):
                    out[name] = float(value.strip().strip('"'))
    return out


def _ask(client: Any, question: str) -> tuple[float, float | None, str | None, dict[str, float]]:
    """(client ms, server took_ms, error, the server's stage timings)."""
    import httpx

    t0 = time.perf_counter()
    try:
        r = client.post("/ask", json={"question": question})
    except httpx.HTTPError as err:
        return (time.perf_counter() - t0) * 1000, None, repr(err), {}
    ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        return ms, None, f"{r.status_code}: {r.text[:200]}", {}
    return ms, float(r.json()["took_ms"]), None, parse_server_timing(r.headers.get("server-timing"))


def http_run(
    url: str, questions: Sequence[str], warmup: int, requests: int, clients: int, concurrent_requests: int
) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=url, timeout=120) as c:
        for i in range(warmup):
            _ask(c, questions[i % len(questions)])
        client_ms: list[float] = []
        server_ms: list[float] = []
        stages: dict[str, list[float]] = {}
        errors: list[str] = []
        for i in range(requests):
            ms, took, err, timing = _ask(c, questions[i % len(questions)])
            if err:
                errors.append(err)
            else:
                client_ms.append(ms)
                server_ms.append(took or 0.0)
                for stage, dur in timing.items():
                    stages.setdefault(stage, []).append(dur)
    out: dict[str, Any] = {
        "sequential": {
            "latency_ms": percentiles(client_ms),
            "server_took_ms": percentiles(server_ms),
            # Medians of each stage over the requests, from the Server-Timing header (not summed: each is its own
            # median, so they need not add up to `total`).
            "server_timing_ms": {stage: round(median(v), 3) for stage, v in stages.items()},
            "http_overhead_ms_p50": round(median(client_ms) - median(server_ms), 3) if client_ms else None,
            "n_errors": len(errors),
            "errors": errors[:5],
        }
    }
    if clients > 0:
        out["concurrent"] = _concurrent(url, questions, clients, concurrent_requests)
    return out


def _concurrent(url: str, questions: Sequence[str], clients: int, total: int) -> dict[str, Any]:
    import httpx

    lock = threading.Lock()
    next_i = 0
    ms_all: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        nonlocal next_i
        with httpx.Client(base_url=url, timeout=120) as c:
            while True:
                with lock:
                    i = next_i
                    next_i += 1
                if i >= total:
                    return
                ms, _took, err, _timing = _ask(c, questions[i % len(questions)])
                with lock:
                    (errors.append(err) if err else ms_all.append(ms))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": len(ms_all) + len(errors),
        "wall_s": round(wall, 3),
        "throughput_rps": round(len(ms_all) / wall, 2) if wall > 0 else 0.0,
        "latency_ms": percentiles(ms_all),
        "n_errors": len(errors),
        "errors": errors[:5],
    }


def request_split(pipeline: Any, questions: Sequence[str], repeats: int) -> dict[str, Any]:
    """Median ms of each stage of one /ask, every stage timed alone on a warmed pipeline (in this process)."""
    import numpy as np

    from index.dense import search_dense
    from index.retriever import RetrievalMode
    from qa.answers import QAResult
    from service.schemas import AskResponse

    settings = pipeline.settings
    mode = RetrievalMode(settings.retriever)
    fingerprint = pipeline.index.manifest.fingerprint
    stages: dict[str, list[float]] = {k: [] for k in ("embed", "search", "faiss", "bm25", "read", "serialise", "total")}
    for _ in range(repeats):
        for q in questions:
            t0 = time.perf_counter()
            vec = pipeline.embedder.encode([q])[0]
            t1 = time.perf_counter()
            passages = pipeline.retriever.run(q, settings.top_k, mode, query_vector=vec)
            t2 = time.perf_counter()
            answers = pipeline.read(q, passages)
            t3 = time.perf_counter()
            result = QAResult(q, answers, passages, not answers, index_fingerprint=fingerprint)
            AskResponse.model_validate(result.to_dict()).model_dump_json()  # what POST /ask does with a result
            t4 = time.perf_counter()
            f0 = time.perf_counter()
            search_dense(pipeline.index.dense, np.asarray(vec).reshape(1, -1), settings.fusion_candidates)
            f1 = time.perf_counter()
            pipeline.index.lexical.search(pipeline.retriever.lexical_query(q), settings.fusion_candidates)
            f2 = time.perf_counter()
            for k, v in (
                ("embed", t1 - t0),
                ("search", t2 - t1),
                ("read", t3 - t2),
                ("serialise", t4 - t3),
                ("total", t4 - t0),
                ("faiss", f1 - f0),
                ("bm25", f2 - f1),
            ):
                stages[k].append(v * 1000)
    return {k: round(median(v), 3) for k, v in stages.items()} | {"n": len(stages["total"])}


def batch_speedup(pipeline: Any, questions: Sequence[str], repeats: int = 5) -> dict[str, Any]:
    """Wall time of answering `questions` one by one (`run`) against one `run_batch`, interleaved repetition by
    repetition so load hits both alike; medians and their ratio (one by one / batched)."""
    pipeline.run_batch(list(questions))  # warm caches
    alone: list[float] = []
    batched: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for q in questions:
            pipeline.run(q)
        t1 = time.perf_counter()
        pipeline.run_batch(list(questions))
        t2 = time.perf_counter()
        alone.append((t1 - t0) * 1000)
        batched.append((t2 - t1) * 1000)
    one, many = median(alone), median(batched)
    return {
        "n": len(questions),
        "repeats": repeats,
        "one_by_one_ms": round(one, 3),
        "batched_ms": round(many, 3),
        "ratio": round(one / many, 3) if many > 0 else None,
        "one_by_one_all_ms": [round(v, 3) for v in alone],
        "batched_all_ms": [round(v, 3) for v in batched],
    }


def in_process(
    backend: str, index_dir: Path, questions: Sequence[str], repeats: int, batch: Sequence[str] = ()
) -> dict[str, Any]:
    """Warm a pipeline with `backend` in this process (one torch thread, as `qa serve` runs): split requests
    into stages (`split_ms`) and, given `batch`, time it one by one against batched (`batch`)."""
    import torch

    from qa.pipeline import QAPipeline
    from runtimes.onnx_export import DEFAULT_ONNX_CACHE
    from service.settings import ServiceSettings

    settings = ServiceSettings(
        index_dir=index_dir, embedding_backend=backend, onnx_cache_dir=DEFAULT_ONNX_CACHE, _env_file=None
    )
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.torch_threads or previous)
    try:
        pipeline = QAPipeline(settings)
        pipeline.warm_up()
        request_split(pipeline, questions[:2], 1)  # warm caches
        out: dict[str, Any] = {"split_ms": request_split(pipeline, questions, repeats)}
        if batch:
            out["batch"] = batch_speedup(pipeline, batch)
        return out
    finally:
        torch.set_num_threads(previous)


def bench_latency(
    backends: Sequence[str],
    questions: Sequence[str],
    warmup: int,
    requests: int,
    clients: int,
    concurrent_requests: int,
    split_repeats: int,
    http: bool = True,
    log_dir: Path = Path("var/bench"),
    say: Callable[[str], None] = lambda _m: None,
    batch: Sequence[str] = (),
) -> dict[str, Any]:
    out: dict[str, Any] = {"questions": list(questions), "batch_questions": list(batch), "backends": {}}
    for b in backends:
        index_dir = ensure_bench_index(b)
        res: dict[str, Any] = {"index_dir": str(index_dir)}
        res |= in_process(b, index_dir, questions, split_repeats, batch)
        say(f"{b}: split {json.dumps(res['split_ms'])}")
        if "batch" in res:
            r = res["batch"]
            say(
                f"{b}: batch of {r['n']}: one by one {r['one_by_one_ms']} ms, batched {r['batched_ms']} ms "
                f"(medians of {r['repeats']}), ratio {r['ratio']}"
            )
        if http:
            with server(b, index_dir, log_dir / f"latency-{b}.server.log") as url:
                res |= http_run(url, questions, warmup, requests, clients, concurrent_requests)
            seq = res["sequential"]["latency_ms"]
            conc = res.get("concurrent", {})
            say(
                f"{b}: /ask p50 {seq.get('p50')} ms p95 {seq.get('p95')} ms p99 {seq.get('p99')} ms; "
                f"{conc.get('clients')} clients {conc.get('throughput_rps')} req/s"
            )
            timing = res["sequential"]["server_timing_ms"]
            say(f"{b}: Server-Timing medians (ms): " + ", ".join(f"{k} {v}" for k, v in timing.items()))
        out["backends"][b] = res
    return out
