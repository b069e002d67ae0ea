#!/usr/bin/env python3
"""Sustained load on POST /ask over loopback: failed requests, p50/p99, throughput, and the server's memory.

Starts `qa serve` on a free loopback port (or targets --url, which must be a loopback address), runs C client
threads for a warm-up and then for the measured S seconds, and stops by itself. The server's resident memory
(VmRSS from /proc/<pid>/status) is sampled every second: growth is the end of the run against the end of the
warm-up. With --swap-every, the index is changed under load through POST /admin/documents (adding, then removing
a document: each a new index version, hot-swapped; two add-and-remove cycles already in the warm-up, so the
one-off cost of holding two versions at once is not counted as growth), and every answer is checked to be
consistent with the others from the same index fingerprint, so an answer mixing two indexes would show.

    .venv/bin/python scripts/load_test.py                                    # 16 clients x 60 s, own server
    .venv/bin/python scripts/load_test.py --clients 16 --seconds 60 --swap-every 5
    .venv/bin/python scripts/load_test.py --url http://127.0.0.1:8000 --pid 12345 --api-key KEY

Writes the summary as JSON (--json, default var/reliability/load_test.json) and prints it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from eval.bench.questions import BUILTIN_QUESTIONS
from eval.bench.server import serve

QUESTIONS = list(BUILTIN_QUESTIONS)  # the same mix `qa bench latency` asks: answerable and not
WARMUP_SWAP_CYCLES = 2  # add-and-remove cycles in the warm-up when --swap-every is set (see run_load)
WARMUP_QUESTION_WAIT_S = 120.0  # at most this long past --warmup for every question to have been answered once
SWAP_DOC = {
    "id": "load-test-doc",
    "text": "Cabozantinib improved median progression-free survival to 5.2 months in the CELESTIAL trial.",
}


def require_loopback(url: str) -> str:
    """Load is only ever sent to this machine."""
    host = urlsplit(url).hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise SystemExit(f"refusing to load {url}: only loopback addresses (127.0.0.1, ::1, localhost) are allowed")
    return url.rstrip("/")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextmanager
def own_server(index_dir: Path | None, api_key: str, log_path: Path, start_timeout: float) -> Iterator[tuple[str, int]]:
    """`qa serve` in a child process (eval.bench.server's launcher, shared with `qa bench latency`)."""
    try:
        with serve(log_path, index_dir, api_key=api_key, start_timeout=start_timeout) as served:
            yield served.url, served.pid
    except RuntimeError as err:
        raise SystemExit(str(err)) from err


@dataclass
class Tally:
    """What the clients saw; appended to from several threads (list.append and Counter updates under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # (fingerprint, question) -> the set of distinct answers seen: more than one means a mixed or unstable answer.
    answers: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    fingerprints: Counter[str] = field(default_factory=Counter)
    asked_in_warmup: set[str] = field(default_factory=set)


def client_loop(
    url: str, headers: dict[str, str], worker: int, stop: threading.Event, measure: threading.Event, tally: Tally
) -> None:
    i = worker
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        while not stop.is_set():
            q = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            t0 = time.perf_counter()
            try:
                r = c.post("/ask", json={"question": q})
                ms = (time.perf_counter() - t0) * 1000
            except httpx.HTTPError as err:
                with tally.lock:
                    tally.errors.append(f"{type(err).__name__}: {err}")
                continue
            with tally.lock:
                if r.status_code != 200:
                    tally.errors.append(f"{r.status_code}: {r.text[:200]}")
                    continue
                if not measure.is_set():
                    tally.asked_in_warmup.add(q)
                    continue
                tally.latencies_ms.append(ms)
                body = r.json()
                body.pop("took_ms", None)
                fp = body.get("index_fingerprint", "")
                tally.fingerprints[fp] += 1
                tally.answers[(fp, q)].add(json.dumps(body, sort_keys=True))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def run_load(
    url: str, pid: int | None, api_key: str | None, clients: int, seconds: float, warmup: float, swap_every: float
) -> dict[str, Any]:
    headers = {"X-API-Key": api_key} if api_key else {}
    tally = Tally()
    stop, measure = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=client_loop, args=(url, headers, i, stop, measure, tally), daemon=True)
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    warmup_end = time.monotonic() + warmup
    if swap_every > 0:
        # Index cycles inside the warm-up: the first swaps hold two index versions at once and spread allocations
        # over the allocator's per-thread arenas, a one-off rise that levels off (45 s, 4 clients, a swap every
        # 2 s: +22, +6, +4 MB over the first three swaps, +4.6 MB over the next twelve). A leak is growth that
        # keeps coming with later swaps, which is what's measured.
        with httpx.Client(base_url=url, headers=headers, timeout=120) as admin:
            for body in [{"upsert": [SWAP_DOC]}, {"delete": [SWAP_DOC["id"]]}] * WARMUP_SWAP_CYCLES:
                r = admin.post("/admin/documents", json=body)
                if r.status_code != 200:
                    with tally.lock:
                        tally.errors.append(f"warm-up swap {r.status_code}: {r.text[:200]}")
    # The warm-up also lasts until every question of the mix has been answered once (their passage lengths are
    # the shapes the reader's allocator caches): on a slow or busy machine a fixed time sees too few of them and
    # counts the rest as growth. Bounded, so a stuck server still ends the run.
    deadline = warmup_end + WARMUP_QUESTION_WAIT_S
    while time.monotonic() < warmup_end or (
        len(tally.asked_in_warmup) < len(QUESTIONS) and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    with tally.lock:
        warmup_errors = list(tally.errors)  # reported apart; they count as failed requests all the same
        tally.errors.clear()
    rss_start = rss_mb(pid) if pid else None
    rss_samples: list[float] = []
    swaps: list[dict[str, Any]] = []
    measure.set()
    t0 = time.monotonic()
    next_swap = t0 + swap_every if swap_every > 0 else float("inf")
    add = True
    with httpx.Client(base_url=url, headers=headers, timeout=120) as admin:
        while (now := time.monotonic()) - t0 < seconds:
            if pid:
                sample = rss_mb(pid)
                if sample is not None:
                    rss_samples.append(sample)
            if now >= next_swap:
                body = {"upsert": [SWAP_DOC]} if add else {"delete": [SWAP_DOC["id"]]}
                r = admin.post("/admin/documents", json=body)
                swaps.append(
                    {
                        "status": r.status_code,
                        **(
                            {"fingerprint": r.json().get("fingerprint"), "took_ms": r.json().get("took_ms")}
                            if r.status_code == 200
                            else {"detail": r.text[:200]}
                        ),
                    }
                )
                swaps[-1]["rss_mb"] = round(rss_mb(pid) or 0.0, 1) if pid else None
                add = not add
                next_swap = time.monotonic() + swap_every
            time.sleep(min(1.0, max(0.05, seconds - (time.monotonic() - t0))))
    elapsed = time.monotonic() - t0
    measure.clear()
    stop.set()
    for t in threads:
        t.join(timeout=90)
    rss_end = rss_mb(pid) if pid else None
    lat = tally.latencies_ms
    mixed = {f"{fp[:8]} {q}": len(v) for (fp, q), v in tally.answers.items() if len(v) > 1}
    growth = (rss_end - rss_start) / rss_start * 100 if rss_start and rss_end else None
    return {
        "url": url,
        "clients": clients,
        "seconds": round(elapsed, 1),
        "warmup_seconds": warmup,
        "warmup_questions_answered": len(tally.asked_in_warmup),
        "requests": len(lat) + len(tally.errors),
        "ok": len(lat),
        "failed": len(tally.errors) + len(warmup_errors),
        "failed_in_warmup": len(warmup_errors),
        "error_samples": (warmup_errors + tally.errors)[:5],
        "throughput_rps": round(len(lat) / elapsed, 2) if elapsed else 0.0,
        "latency_ms": {
            "p50": round(percentile(lat, 50), 1),
            "p90": round(percentile(lat, 90), 1),
            "p99": round(percentile(lat, 99), 1),
            "max": round(max(lat), 1) if lat else None,
            "mean": round(statistics.fmean(lat), 1) if lat else None,
        },
        "rss_mb": {
            "after_warmup": round(rss_start, 1) if rss_start else None,
            "end": round(rss_end, 1) if rss_end else None,
            "max": round(max(rss_samples), 1) if rss_samples else None,
            "growth_pct": round(growth, 2) if growth is not None else None,
            "growth_mb": round(rss_end - rss_start, 1) if rss_start and rss_end else None,
        },
        "swaps": len(swaps),
        "swap_failures": [s for s in swaps if s["status"] != 200],
        "swap_took_ms": [s.get("took_ms") for s in swaps],
        "rss_mb_after_swaps": [s.get("rss_mb") for s in swaps],
        "index_fingerprints_seen": dict(tally.fingerprints),
        "inconsistent_answers": mixed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="A running server on loopback (default: start `qa serve` here).")
    parser.add_argument("--pid", type=int, help="With --url: the server's process id, to sample its memory.")
    parser.add_argument("--api-key", help="With --url: the server's QA_API_KEY (needed by --swap-every).")
    parser.add_argument("--index-dir", type=Path, help="Index for the own server (default: QA_INDEX_DIR or var/index).")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0, help="Measured duration (after the warm-up).")
    parser.add_argument("--warmup", type=float, default=10.0, help="Unmeasured load first, so memory settles.")
    parser.add_argument("--swap-every", type=float, default=0.0, help="Change the index under load every N s.")
    parser.add_argument("--start-timeout", type=float, default=600.0, help="Wait this long for the own server.")
    parser.add_argument("--json", type=Path, default=Path("var/reliability/load_test.json"))
    opts = parser.parse_args(argv)
    if opts.clients < 1 or opts.seconds <= 0 or opts.warmup < 0:
        parser.error("--clients must be >= 1, --seconds > 0 and --warmup >= 0")

    if opts.url:
        summary = run_load(
            require_loopback(opts.url), opts.pid, opts.api_key, opts.clients, opts.seconds, opts.warmup, opts.swap_every
        )
    else:
        api_key = secrets.token_urlsafe(16)
        with tempfile.TemporaryDirectory(prefix="load-test-") as tmp:
            index_dir = opts.index_dir or Path(os.environ.get("QA_INDEX_DIR", "var/index"))
            if opts.swap_every > 0 and index_dir.exists():
                # Updates under load write new versions: work on a copy, never on the caller's index.
                shutil.copytree(index_dir, Path(tmp) / "index")
                index_dir = Path(tmp) / "index"
            with own_server(index_dir, api_key, Path(tmp) / "serve.log", opts.start_timeout) as (url, pid):
                summary = run_load(url, pid, api_key, opts.clients, opts.seconds, opts.warmup, opts.swap_every)
    print(json.dumps(summary, indent=2))
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    failed = summary["failed"] or summary["swap_failures"] or summary["inconsistent_answers"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
