"""Reader latency and answers, variant against variant, on the passages the pipeline retrieves for a gold set.

A variant is a backend and a precision: `torch:fp32` (the reference), `torch:bf16`, `torch:auto`, `onnx`. Each
reads the same (question, passages) pairs, one variant after the other, on one thread (the service's
per-question setting) and is timed on the reader call alone; then each answers every question through the whole
pipeline (calibrated threshold, retrieval interpolation, coverage). The first variant is the reference: the
others report how often their best span (text, document, offsets) and their final outcome (the answer the
service would return first, or no answer) equal its own, and the largest score difference on a shared span.

    nice .venv/bin/python -m eval.bench.reader_variants ../shared/gold/seed_dev.jsonl qa/data/reader 45 \
        torch:fp32 torch:auto --out docs/results/reader-precision-seed_dev.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from eval.bench.common import envelope, load_average, percentiles, write_json
from eval.datasets import load_gold
from eval.runner import EvalRunner
from qa.answers import QAResult
from qa.commands import load_settings
from qa.pipeline import QAPipeline
from qa.readers.base import ReaderKind
from qa.readers.precision import Precision
from qa.readers.transformers_reader import ReaderBackend


def _outcome(result: QAResult) -> tuple[str, str, int, int] | None:
    """What the service would return first: the top answer's text and citation, or None for no answer."""
    if result.no_answer:
        return None
    a = result.answers[0]
    return (a.text, a.doc_id, a.start, a.end)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold")
    parser.add_argument("model")
    parser.add_argument("limit", type=int)
    parser.add_argument("variants", nargs="*", default=["torch:fp32", "torch:bf16"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    settings = load_settings(reader="transformers", reader_model=args.model)
    runner = EvalRunner(load_gold(args.gold), settings, limit=args.limit)
    runner.warm_up()
    pipe = runner.pipeline
    inputs = []
    for ex in runner.examples:
        passages = pipe.retrieve(ex.question, settings.top_k, settings.retriever)
        inputs.append((ex.question, pipe.expand_passages(passages)))
    docs = pipe.index.documents
    before = load_average()
    rows, answers, outcomes = [], {}, {}
    for variant in args.variants:
        backend, _, precision = variant.partition(":")
        update = {  # the harness's pipeline defaults to the heuristic reader: every variant is the trained one
            "reader": ReaderKind.TRANSFORMERS,
            "reader_backend": ReaderBackend.parse(backend),
            "reader_precision": Precision.parse(precision or "auto"),
        }
        pipeline = QAPipeline(pipe.settings.model_copy(update=update), embedder=pipe.embedder)
        pipeline.warm_up()
        reader = pipeline.reader(ReaderKind.TRANSFORMERS)
        for q, ps in inputs[:3]:  # warm-up
            reader.run(q, ps, docs, 12)
        ms, best = [], []
        for q, ps in inputs:
            t = time.perf_counter()
            out = reader.run(q, ps, docs, 12)
            ms.append((time.perf_counter() - t) * 1000)
            best.append((out[0].text, out[0].doc_id, out[0].start, out[0].end, out[0].score) if out else None)
        answers[variant] = best
        outcomes[variant] = [_outcome(pipeline.run(ex.question)) for ex in runner.examples]
        rows.append(
            {
                "variant": variant,
                "active_precision": str(reader.active_precision),
                "ms": {k: round(v, 1) for k, v in percentiles(ms).items() if k in ("p50", "p95")},
                "answered": sum(o is not None for o in outcomes[variant]),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    ref_name = args.variants[0]
    for row in rows:
        got, ref = answers[row["variant"]], answers[ref_name]
        same = [a[:4] == b[:4] if a and b else a == b for a, b in zip(got, ref, strict=True)]
        diffs = [abs(a[4] - b[4]) for a, b, s in zip(got, ref, same, strict=True) if s and a]
        final, final_ref = outcomes[row["variant"]], outcomes[ref_name]
        row["vs_reference"] = {
            "reference": ref_name,
            "questions": len(ref),
            "same_best_span": sum(same),
            "max_score_difference_same_span": round(max(diffs, default=0.0), 4),
            "same_final_answer_or_abstention": sum(a == b for a, b in zip(final, final_ref, strict=True)),
            "p50_speed_up": round(rows[0]["ms"]["p50"] / row["ms"]["p50"], 2),
        }
        print(row["variant"], json.dumps(row["vs_reference"]), flush=True)
    command = "python -m eval.bench.reader_variants " + " ".join(sys.argv[1:] if argv is None else argv)
    results = {"gold": str(args.gold), "model": str(args.model), "threads": args.threads, "results": rows}
    if args.out:
        write_json(args.out, envelope("reader-variants", command, results, before))


if __name__ == "__main__":
    main()
