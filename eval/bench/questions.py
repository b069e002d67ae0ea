"""Questions for the built-in corpus: the ones `scripts/bench_ask_latency.py` asks, answerable and not."""

from __future__ import annotations

import json
from pathlib import Path

from eval.bench.common import SEED_DEV

BUILTIN_QUESTIONS = (
    "What was the median overall survival with STRIDE?",
    "What is the overall survival hazard ratio for STRIDE versus sorafenib?",
    "Which kinases does lenvatinib inhibit?",
    "What is regorafenib approved for?",
    "What was the 36-month overall survival rate for STRIDE?",
    "Which drug is a deuterated sorafenib derivative?",
    "What are desmoid tumors?",
    "What is the boiling point of tungsten at sea level?",
)


def batch_questions(n: int, gold: Path = SEED_DEV) -> list[str]:
    """`n` distinct questions on the built-in corpus for a batch: seed_dev's first ones when it is here (a batch
    of one question repeated would flatter batching), else the ones above, repeated."""
    if gold.is_file():
        with gold.open(encoding="utf-8") as fh:
            found = [json.loads(line)["question"] for line in fh if line.strip()]
        if len(found) >= n:
            return found[:n]
    return [BUILTIN_QUESTIONS[i % len(BUILTIN_QUESTIONS)] for i in range(n)]
