"""What every benchmark shares: medians, percentiles, the machine's load, and the JSON envelope."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "benchmarks"  # the shared benchmark folder beside the checkout
SEED_DEV = DEFAULT_DATA_DIR.parent / "gold" / "seed_dev.jsonl"

T = TypeVar("T")
DEFAULT_OUT_DIR = Path("var/bench")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    """n, mean, p50/p95/p99, min and max of latencies in milliseconds (inclusive quantiles)."""
    if not ms:
        return {"n": 0}
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return {
        "n": len(ms),
        "mean": round(statistics.fmean(ms), 3),
        "p50": round(q[49], 3),
        "p95": round(q[94], 3),
        "p99": round(q[98], 3),
        "min": round(min(ms), 3),
        "max": round(max(ms), 3),
    }


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return []


def rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine() -> dict[str, Any]:
    import numpy as np

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_1_5_15": load_average(),
    }
    for mod in ("torch", "onnxruntime", "faiss", "sentence_transformers"):
        m = sys.modules.get(mod)
        if m is not None:
            info[mod] = getattr(m, "__version__", "?")
    return info


def envelope(kind: str, command: str, results: dict[str, Any], load_before: list[float]) -> dict[str, Any]:
    """Every report: what ran, on what, how loaded the machine was before and after, and the code version."""
    from eval.runner import code_version

    return {
        "benchmark": kind,
        "command": command,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine(), "load_before": load_before, "load_after": load_average()},
        "code": code_version(),
        **results,
    }


def write_json(path: Path, obj: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def ratio(num: float, den: float) -> float | None:
    return round(num / den, 3) if den and den == den and num == num else None
