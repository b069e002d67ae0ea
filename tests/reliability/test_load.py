"""Sustained load against a real `qa serve` process on loopback (short CI variant of scripts/load_test.py).

4 clients for 10 s after a warm-up (4 s, every question of the mix answered once, and two add-and-remove
index cycles), the index changed under load every 2 s: no failed request, no answer inconsistent with the others
from the same index, and the server's resident memory within 5% of where it was after the warm-up. The full run
(16 clients x 60 s) is `scripts/load_test.py`'s default; see docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.settings import Settings

pytestmark = [pytest.mark.model, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_short_load_with_swaps_fails_nothing_and_keeps_memory_steady(
    demo_settings: Settings, demo_pipeline: object, tmp_path: Path
) -> None:
    out = tmp_path / "load.json"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "load_test.py"),
        "--index-dir",
        str(demo_settings.index_dir),
        "--clients",
        "4",
        "--seconds",
        "10",
        "--warmup",
        "4",
        "--swap-every",
        "2",
        "--start-timeout",
        "240",
        "--json",
        str(out),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env, cwd=tmp_path)
    assert out.exists(), proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    print(json.dumps(summary, indent=2))
    assert summary["failed"] == 0, summary["error_samples"]
    assert summary["ok"] >= 8
    assert summary["latency_ms"]["p99"] >= summary["latency_ms"]["p50"] > 0
    assert summary["swaps"] >= 2 and summary["swap_failures"] == []
    assert len(summary["index_fingerprints_seen"]) == 2, "answers came from both indexes"
    assert summary["inconsistent_answers"] == {}
    # 5% of the ~850 MB process is ~40 MB: above the settling left once the warm-up has answered every question
    # and swapped four times (a fixed 4 s warm-up without swaps counted first-time reader shapes and arena spread
    # as growth: 5.1% in CI), below one leaked copy of the reader (~90 MB in fp32) per swap.
    assert summary["rss_mb"]["growth_pct"] < 5, summary["rss_mb"]
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
