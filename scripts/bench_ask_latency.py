#!/usr/bin/env python3
"""Latency and throughput of POST /ask on loopback, as a client sees them.

Starts `qa serve` on a free loopback port (building the built-in corpus's index on first run, as `make serve`
does) or targets a running server with --url. Then: a few warm-up requests, N sequential requests for
p50/p95/p99, and a concurrent run (C clients) for throughput. Bounded by --max-seconds; prints a summary and
writes the numbers as JSON.

    .venv/bin/python scripts/bench_ask_latency.py                       # own server, var/index
    .venv/bin/python scripts/bench_ask_latency.py --url http://127.0.0.1:8000 --requests 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

QUESTIONS = [
    "What was the median overall survival with STRIDE?",
    "What is the overall survival hazard ratio for STRIDE versus sorafenib?",
    "Which kinases does lenvatinib inhibit?",
    "What is regorafenib approved for?",
    "What was the 36-month overall survival rate for STRIDE?",
    "Which drug is a deuterated sorafenib derivative?",
    "What are desmoid tumors?",
    "What is the boiling point of tungsten at sea level?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def own_server(index_dir: str | None, log_path: Path, start_timeout: float) -> Iterator[str]:
    """`qa serve` in a child process (its own interpreter, so client threads do not share its GIL)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "qa.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if index_dir:
        cmd += ["--index-dir", index_dir]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"qa serve exited with {proc.returncode}; see {log_path}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"qa serve not ready after {start_timeout:.0f}s; see {log_path}")
                try:
                    if httpx.get(url + "/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def percentiles(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {}
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return {
        "n": len(ms),
        "mean": round(statistics.fmean(ms), 2),
        "p50": round(q[49], 2),
        "p95": round(q[94], 2),
        "p99": round(q[98], 2),
        "min": round(min(ms), 2),
        "max": round(max(ms), 2),
    }


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.hit = False

    def passed(self) -> bool:
        if time.monotonic() > self.end:
            self.hit = True
        return self.hit


def ask(client: httpx.Client, question: str, headers: dict[str, str]) -> tuple[float, float | None, str | None]:
    """One request: (client-side ms, server took_ms, error or None)."""
    t0 = time.perf_counter()
    try:
        r = client.post("/ask", json={"question": question}, headers=headers)
    except httpx.HTTPError as err:
        return (time.perf_counter() - t0) * 1000, None, repr(err)
    ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        return ms, None, f"{r.status_code}: {r.text[:200]}"
    return ms, float(r.json()["took_ms"]), None


def sequential(url: str, n: int, headers: dict[str, str], deadline: Deadline) -> dict[str, Any]:
    client_ms: list[float] = []
    server_ms: list[float] = []
    errors: list[str] = []
    with httpx.Client(base_url=url, timeout=120) as c:
        for i in range(n):
            if deadline.passed():
                break
            ms, took, err = ask(c, QUESTIONS[i % len(QUESTIONS)], headers)
            if err:
                errors.append(err)
            else:
                client_ms.append(ms)
                server_ms.append(took or 0.0)
    return {
        "latency_ms": percentiles(client_ms),
        "server_took_ms": percentiles(server_ms),
        "errors": errors[:10],
        "n_errors": len(errors),
    }


def concurrent(url: str, clients: int, total: int, headers: dict[str, str], deadline: Deadline) -> dict[str, Any]:
    lock = threading.Lock()
    next_i = 0
    client_ms: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        nonlocal next_i
        with httpx.Client(base_url=url, timeout=120) as c:
            while not deadline.passed():
                with lock:
                    i = next_i
                    next_i += 1
                if i >= total:
                    return
                ms, _took, err = ask(c, QUESTIONS[i % len(QUESTIONS)], headers)
                with lock:
                    (errors.append(err) if err else client_ms.append(ms))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    done = len(client_ms) + len(errors)
    return {
        "clients": clients,
        "requests": done,
        "wall_s": round(wall, 3),
        "throughput_rps": round(len(client_ms) / wall, 2) if wall > 0 else 0.0,
        "latency_ms": percentiles(client_ms),
        "errors": errors[:10],
        "n_errors": len(errors),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="Target a running server instead of starting `qa serve`.")
    ap.add_argument("--index-dir", help="Index directory for the started server (default: QA_INDEX_DIR or var/index).")
    ap.add_argument("--api-key", default=os.environ.get("QA_API_KEY"), help="X-API-Key to send (default: QA_API_KEY).")
    ap.add_argument("--warmup", type=int, default=10, help="Unmeasured requests first.")
    ap.add_argument("--requests", type=int, default=200, help="Sequential requests measured.")
    ap.add_argument("--concurrency", type=int, default=8, help="Clients in the concurrent run (0 skips it).")
    ap.add_argument("--concurrent-requests", type=int, default=200, help="Requests in the concurrent run, in all.")
    ap.add_argument("--max-seconds", type=float, default=300, help="Stop issuing requests after this long.")
    ap.add_argument("--start-timeout", type=float, default=600, help="Seconds to wait for a started server's /ready.")
    ap.add_argument("--out", type=Path, default=Path("var/bench/ask_latency.json"), help="Where the JSON goes.")
    args = ap.parse_args()
    headers = {"X-API-Key": args.api_key} if args.api_key else {}

    @contextmanager
    def target() -> Iterator[str]:
        if args.url:
            yield args.url.rstrip("/")
        else:
            with own_server(args.index_dir, args.out.with_suffix(".server.log"), args.start_timeout) as url:
                yield url

    with target() as url:
        ready = httpx.get(url + "/ready", timeout=10).json()
        deadline = Deadline(args.max_seconds)
        with httpx.Client(base_url=url, timeout=120) as c:
            for i in range(args.warmup):
                ask(c, QUESTIONS[i % len(QUESTIONS)], headers)
        seq = sequential(url, args.requests, headers, deadline)
        conc = (
            concurrent(url, args.concurrency, args.concurrent_requests, headers, deadline)
            if args.concurrency > 0
            else None
        )

    report = {
        "target": args.url or "qa serve (started by this script)",
        "index": {
            "fingerprint": ready.get("fingerprint"),
            "model": ready.get("model", {}).get("name"),
            "documents": ready.get("corpus", {}).get("n_documents"),
            "chunks": ready.get("corpus", {}).get("n_chunks"),
            "reader": ready.get("defaults", {}).get("reader"),
            "retriever": ready.get("defaults", {}).get("retriever"),
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "questions": QUESTIONS,
        "sequential": seq,
        "concurrent": conc,
        "stopped_by_max_seconds": deadline.hit,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    lat = seq["latency_ms"]
    print(f"/ask on {url} ({report['index']['documents']} documents, reader {report['index']['reader']})")
    if lat:
        print(
            f"sequential: n={lat['n']} p50={lat['p50']} ms p95={lat['p95']} ms p99={lat['p99']} ms "
            f"(server took_ms p50={seq['server_took_ms']['p50']})"
        )
    if conc and conc["latency_ms"]:
        cl = conc["latency_ms"]
        print(
            f"concurrent: {conc['clients']} clients, {conc['requests']} requests, {conc['throughput_rps']} req/s, "
            f"p50={cl['p50']} ms p95={cl['p95']} ms"
        )
    n_errors = seq["n_errors"] + (conc["n_errors"] if conc else 0)
    print(f"errors: {n_errors}; stopped early: {deadline.hit}; JSON: {args.out}")
    return 1 if n_errors else 0


if __name__ == "__main__":
    sys.exit(main())
