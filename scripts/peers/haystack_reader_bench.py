#!/usr/bin/env python3
"""Haystack's extractive reader on given passages: per question, its best answer, score and milliseconds.

Runs in var/peers/haystack (setup.sh). Haystack 2.x ships the reader as
`haystack.components.readers.ExtractiveReader`; Haystack 3 moved it, unchanged in what it computes, to the
transformers-haystack package as `TransformersExtractiveReader`: whichever is installed is used.

Input (`--input`): JSON `{"questions": [{"id", "question", "passages": [text, ...]}, ...]}`, the passages the
service reads for each question (`eval.bench.reader_peers` writes it). Settings as close to the project's
reader as Haystack allows: windows of `--max-seq-length` tokens with `--stride` overlap, batches of
`--max-batch-size` windows, 20 candidate spans per window, no-answer on, CPU, `--threads` torch threads,
`top_k=1` (Haystack then returns that answer and its no-answer, best first). After `warm_up` and
`--warmup` questions run untimed, every question's `run` is timed (documents are built before the clock).
Standard library plus Haystack only: the product's code is not importable here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def _reader_class() -> tuple[Any, str]:
    try:
        from haystack.components.readers import ExtractiveReader  # Haystack 2.x
    except ImportError:
        from haystack_integrations.components.readers.transformers import (
            TransformersExtractiveReader as ExtractiveReader,
        )

        return ExtractiveReader, "haystack_integrations.components.readers.transformers.TransformersExtractiveReader"
    return ExtractiveReader, "haystack.components.readers.ExtractiveReader"


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, required=True, help="JSON of questions with their passage texts")
    ap.add_argument("--model", required=True, help="extractive QA model folder (the project's reader)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the same as the project's side)")
    ap.add_argument("--warmup", type=int, default=3, help="questions run untimed first")
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--max-batch-size", type=int, default=16)
    ap.add_argument("--answers-per-seq", type=int, default=20)
    ap.add_argument("--out", type=Path, required=True)
    return ap.parse_args()


def main() -> None:
    a = parse_args()
    import torch
    from haystack import Document
    from haystack.utils import ComponentDevice

    torch.set_num_threads(a.threads)
    questions = json.loads(a.input.read_text(encoding="utf-8"))["questions"]
    Reader, reader_path = _reader_class()
    reader = Reader(
        model=a.model,
        device=ComponentDevice.from_str("cpu"),
        top_k=1,
        max_seq_length=a.max_seq_length,
        stride=a.stride,
        max_batch_size=a.max_batch_size,
        answers_per_seq=a.answers_per_seq,
        no_answer=True,
        model_kwargs={"dtype": torch.float32},
    )
    t0 = time.perf_counter()
    reader.warm_up()
    warm_up_s = time.perf_counter() - t0
    docs = [[Document(content=t) for t in q["passages"]] for q in questions]
    for q, d in list(zip(questions, docs, strict=True))[: a.warmup]:
        reader.run(query=q["question"], documents=d)
    results = []
    for q, d in zip(questions, docs, strict=True):
        t = time.perf_counter()
        answers = reader.run(query=q["question"], documents=d)["answers"]
        ms = (time.perf_counter() - t) * 1000
        spans = [x for x in answers if x.data is not None]
        null = next((x for x in answers if x.data is None), None)
        results.append(
            {
                "id": q["id"],
                "ms": round(ms, 3),
                "passages": len(d),
                "text": spans[0].data if spans else None,
                "score": round(float(spans[0].score), 6) if spans else None,
                "no_answer_score": round(float(null.score), 6) if null is not None else None,
                # Haystack's own abstention: its no-answer outranks every span (with top_k=1: span score < 0.5).
                "abstained": not answers or answers[0].data is None,
            }
        )
    out = {
        "framework": "haystack",
        "reader": reader_path,
        "versions": {p: _version(p) for p in ("haystack-ai", "transformers-haystack", "transformers", "torch")},
        "settings": {
            "top_k": 1,
            "max_seq_length": a.max_seq_length,
            "stride": a.stride,
            "max_batch_size": a.max_batch_size,
            "answers_per_seq": a.answers_per_seq,
            "no_answer": True,
            "calibration_factor": reader.calibration_factor,
            "overlap_threshold": reader.overlap_threshold,
            "device": "cpu",
        },
        "threads": torch.get_num_threads(),
        "warmup_questions": min(a.warmup, len(questions)),
        "warm_up_s": round(warm_up_s, 3),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "questions": results,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
