"""Reading only what can answer: the pipeline with `skip_unreachable` off (every retrieved passage read) and on
(passages of documents that cannot reach the threshold skipped, `qa.ranking.reachable`), on the same retrieved
passages of a gold set, one after the other per question.

It reports each side's reading time (the whole `QAPipeline.read`, one thread, as the service reads one question),
how many passages the reader was given, and how often the two sides list exactly the same answers (text, document,
offsets, score to 6 decimals) and give the same first answer or abstention. The sides can differ only through the
reader's batch padding (a batch is padded to its longest window) or a candidate that the skipped documents' spans
pushed out of the reader's candidate pool before.

    nice .venv/bin/python -m eval.bench.unreachable ../shared/gold/seed_dev.jsonl qa/data/reader 45 \
        --out docs/results/unreachable-seed_dev.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from eval.bench.common import envelope, load_average, percentiles, write_json
from eval.datasets import load_gold
from eval.runner import EvalRunner
from qa.answers import Answer
from qa.commands import load_settings
from qa.pipeline import QAPipeline
from qa.readers.base import ReaderKind

SIDES = ("read every passage", "skip unreachable")


def _listed(answers: list[Answer]) -> list[tuple[str, str, int, int, float]]:
    return [(a.text, a.doc_id, a.start, a.end, round(a.score, 6)) for a in answers]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold")
    parser.add_argument("model")
    parser.add_argument("limit", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    settings = load_settings(reader=ReaderKind.TRANSFORMERS, reader_model=args.model)
    runner = EvalRunner(load_gold(args.gold), settings, limit=args.limit)
    runner.warm_up()
    pipe = runner.pipeline
    pipelines = []
    given: dict[str, list[int]] = {side: [] for side in SIDES}
    for side, skip in zip(SIDES, (False, True), strict=True):
        update = {"reader": ReaderKind.TRANSFORMERS, "skip_unreachable": skip}
        pipeline = QAPipeline(pipe.settings.model_copy(update=update), embedder=pipe.embedder)
        pipeline.warm_up()
        reader = pipeline.reader(ReaderKind.TRANSFORMERS)
        run = reader.run

        def counted(question, passages, documents, max_answers=5, _run=run, _n=given[side]):
            _n.append(len(passages))
            return _run(question, passages, documents, max_answers)

        reader.run = counted  # type: ignore[method-assign]
        pipelines.append(pipeline)
    inputs = [(ex.question, pipe.retrieve(ex.question, settings.top_k, settings.retriever)) for ex in runner.examples]
    for pipeline in pipelines:  # warm-up
        for q, ps in inputs[:3]:
            pipeline.read(q, ps)
    for n in given.values():
        n.clear()
    before = load_average()
    ms: dict[str, list[float]] = {side: [] for side in SIDES}
    listed: dict[str, list[Any]] = {side: [] for side in SIDES}
    for q, ps in inputs:
        for side, pipeline in zip(SIDES, pipelines, strict=True):
            read_before = len(given[side])
            t = time.perf_counter()
            answers = pipeline.read(q, ps)
            ms[side].append((time.perf_counter() - t) * 1000)
            if len(given[side]) == read_before:
                given[side].append(0)  # nothing left to read: the reader was not called
            listed[side].append(_listed(answers))
    full, skipped = (listed[s] for s in SIDES)
    rows = [
        {
            "side": side,
            "ms": {k: round(v, 1) for k, v in percentiles(ms[side]).items() if k in ("p50", "p95", "mean")},
            "passages_read_mean": round(sum(given[side]) / len(given[side]), 2),
            "nothing_read": sum(n == 0 for n in given[side]),
            "answered": sum(bool(a) for a in listed[side]),
        }
        for side in SIDES
    ]
    results = {
        "gold": str(args.gold),
        "model": str(args.model),
        "threads": args.threads,
        "questions": len(inputs),
        "results": rows,
        "same_answers": sum(a == b for a, b in zip(full, skipped, strict=True)),
        "same_first_answer_or_abstention": sum(
            (a[0][:4] if a else None) == (b[0][:4] if b else None) for a, b in zip(full, skipped, strict=True)
        ),
        "mean_speed_up": round(rows[0]["ms"]["mean"] / rows[1]["ms"]["mean"], 2),
        "p50_speed_up": round(rows[0]["ms"]["p50"] / rows[1]["ms"]["p50"], 2),
    }
    print(json.dumps(results, indent=1), flush=True)
    command = "python -m eval.bench.unreachable " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.out:
        write_json(args.out, envelope("unreachable", command, results, before))


if __name__ == "__main__":
    main()
