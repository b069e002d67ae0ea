"""Shared by the peer scripts (run inside their own venvs; standard library only)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def args(description: str, variants: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument(
        "--docs", type=Path, required=True, help="JSONL of {id, text} (the corpus, as the product reads it)"
    )
    ap.add_argument("--questions", type=Path, required=True, help="JSON list of questions")
    ap.add_argument("--model", required=True, help="sentence-transformers folder (the bundled MiniLM)")
    ap.add_argument("--variant", choices=variants, required=True)
    ap.add_argument("--queries", type=int, default=200, help="questions timed (after 10 warm-up ones)")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--skip-index-timing", action="store_true", help="index once untimed, then time queries only")
    ap.add_argument("--out", type=Path, required=True)
    return ap.parse_args()


def read_docs(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def percentiles(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return {"n": len(ms), "p50": round(q[49], 3), "p95": round(q[94], 3), "p99": round(q[98], 3)}


def time_queries(fn: Any, questions: list[str], n: int) -> dict[str, float]:
    for q in questions[:10]:
        fn(q)
    ms = []
    for q in questions[10 : 10 + n]:
        t0 = time.perf_counter()
        fn(q)
        ms.append((time.perf_counter() - t0) * 1000)
    return percentiles(ms)


def write(path: Path, obj: dict[str, Any]) -> None:
    obj.setdefault("python", sys.version.split()[0])
    obj.setdefault("cpus", os.cpu_count())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
