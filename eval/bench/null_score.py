"""Does the window's no-answer score add anything to a span's score? A study on a saved calibration reading.

The trained reader's span score p(start) x p(end) already competes with the no-answer position (CLS) in one
softmax per window; `details["null_score"]` is that position's own product. This reads a candidates file that
`qa calibrate --save-candidates` wrote (the release writes var/cal/trained-candidates.json.gz), prints, per set,
the median score and null score of each question's top candidate for answerable and unanswerable questions, and
then sweeps the calibration grid again with the span score replaced by

- `ratio:G`: s x (s / (s + null)) ** G, the span against its window's no-answer, and
- `minus:L`: max(0, s - L x null),

next to the score as it is (`base`). Each variant's best row (mean F1 over the sets, SQuAD 2.0 scoring) is
printed and written. Reads no model: the candidates carry every score.

    .venv/bin/python -m eval.bench.null_score var/cal/trained-candidates.json.gz \
        --variants base ratio:0.5 ratio:1 ratio:2 minus:0.25 minus:0.5 minus:1 --out var/bench/null-score.json
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from eval.bench.common import envelope, load_average, write_json
from eval.calibrate_cli import DEFAULT_COVERAGE_EXPONENTS, DEFAULT_THRESHOLDS, DEFAULT_WEIGHTS
from eval.calibration import QuestionCandidates, best, load_candidates, sweep
from qa.answers import Answer

Transform = Callable[[float, float], float]


def transform(variant: str) -> Transform:
    """`base`, `ratio:G` or `minus:L` as a function of (span score, null score)."""
    kind, _, arg = variant.partition(":")
    if kind == "base":
        return lambda s, _null: s
    if kind == "ratio":
        g = float(arg)
        return lambda s, null: s * (s / (s + null)) ** g if s + null > 0 else 0.0
    if kind == "minus":
        lam = float(arg)
        return lambda s, null: max(0.0, s - lam * null)
    raise ValueError(f"unknown variant {variant!r}; give base, ratio:G or minus:L")


def rescored(answers: Sequence[Answer], f: Transform) -> list[Answer]:
    return [dataclasses.replace(a, score=f(a.score, float(a.details.get("null_score", 0.0)))) for a in answers]


def medians(sets: dict[str, list[QuestionCandidates]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per set and kind of question: the median score and null score of the top candidate (the reader's best)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, questions in sets.items():
        out[name] = {}
        for label, answerable in (("answerable", True), ("unanswerable", False)):
            tops = [
                max(q.candidates, key=lambda a: a.score)
                for q in questions
                if q.candidates and q.answerable == answerable
            ]
            if tops:
                out[name][label] = {
                    "questions": len(tops),
                    "score": round(statistics.median(t.score for t in tops), 4),
                    "null_score": float(
                        f"{statistics.median(float(t.details.get('null_score', 0.0)) for t in tops):.3g}"
                    ),
                }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", type=Path, help="a file of qa calibrate --save-candidates")
    parser.add_argument("--variants", nargs="+", default=["base", "ratio:1", "minus:0.5"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    before = load_average()
    sets, meta = load_candidates(args.candidates)
    weights = [float(x) for x in DEFAULT_WEIGHTS.split(",")]
    thresholds = [float(x) for x in DEFAULT_THRESHOLDS.split(",")]
    exponents = [float(x) for x in DEFAULT_COVERAGE_EXPONENTS.split(",")]
    tops = medians(sets)
    for name, kinds in tops.items():
        print(name, kinds, flush=True)
    original = {name: [q.candidates for q in questions] for name, questions in sets.items()}
    rows = []
    for variant in args.variants:
        f = transform(variant)
        for name, questions in sets.items():
            for q, answers in zip(questions, original[name], strict=True):
                q.candidates = rescored(answers, f)
        b = best(sweep(sets, weights, thresholds, (None,), exponents))
        row = {
            "variant": variant,
            "mean_f1": b["mean_f1"],
            "coverage_exponent": b["coverage_exponent"],
            "retrieval_weight": b["retrieval_weight"],
            "threshold": b["threshold"],
            "f1": {name: s["f1"] for name, s in b["sets"].items()},
        }
        rows.append(row)
        print(row, flush=True)
    if args.out:
        command = "python -m eval.bench.null_score " + " ".join(sys.argv[1:] if argv is None else argv)
        results = {
            "candidates": str(args.candidates),
            "model": meta.get("reader_model"),
            "weights_digest": meta.get("weights_digest"),
            "top_candidates": tops,
            "rows": rows,
        }
        write_json(args.out, envelope("null-score", command, results, before))


if __name__ == "__main__":
    main()
