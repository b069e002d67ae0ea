"""Does a further piece of evidence add anything to a span's score? A study on a saved calibration reading.

Reads a candidates file that `qa calibrate --save-candidates` wrote (the release writes
var/cal/trained-candidates.json.gz), prints, per set, the median score and null score of each question's top
candidate for answerable and unanswerable questions, and then sweeps the calibration grid again with the reader's
span score s replaced by

- `ratio:G`: s x (s / (s + null)) ** G, the span against its window's no-answer score (`details["null_score"]`:
  the trained reader's span and no-answer positions share one softmax per window, and this asks whether the
  no-answer side says more than the span's own probability already does);
- `minus:L`: max(0, s - L x null);
- `type:F`: s x F when the span does not have the form the question asks for (`fits_answer_type`: a dose
  question wants a number with a dose unit, a percentage question a percentage...), s otherwise. The issue asked
  for the expected answer type in the ranking "where it helps on held-out dev data": this is that measurement;

next to the score as it is (`base`). The new score replaces the reader score that the retrieval interpolation and
the threshold read, as `QAPipeline.read` would use it. Each variant's best row (mean F1 over the sets, SQuAD 2.0
scoring) is printed and written with its wrong answers. Reads no model: the candidates carry every score.

    .venv/bin/python -m eval.bench.rescoring var/cal/trained-candidates.json.gz --variants base ratio:0.5 \
        ratio:1 ratio:2 minus:0.25 minus:0.5 minus:1 type:0.5 type:0.25 type:0.1 type:0 \
        --out docs/results/rescoring.json
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from eval.bench.common import envelope, load_average, write_json
from eval.calibrate_cli import DEFAULT_COVERAGE_EXPONENTS, DEFAULT_THRESHOLDS, DEFAULT_WEIGHTS
from eval.calibration import QuestionCandidates, best, load_candidates, sweep
from qa.answers import Answer
from qa.question import NUMERIC_TYPES, AnswerType, analyse

Transform = Callable[[Answer], float]
"""A candidate (its question in `answer.question`) to its new reader score."""

_NUMBER = r"(?:\d[\d.,]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|hundred|thousand)"
_HAS_NUMBER = re.compile(rf"\b{_NUMBER}\b|\d", re.IGNORECASE)
_DOSE = re.compile(rf"{_NUMBER}\s*-?\s*(?:mg|g|µg|μg|mcg|ug|ng|kg|iu|units?|ml|mmol|gy)\b", re.IGNORECASE)
_TIME = re.compile(
    rf"{_NUMBER}\s*-?\s*(?:seconds?|s|min(?:ute)?s?|hours?|h|hrs?|days?|d|weeks?|wks?|months?|mo|years?|yrs?)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:1[89]|20)\d\d\b")
_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b", re.IGNORECASE)


def fits_answer_type(answer_type: AnswerType, text: str) -> bool:
    """Whether `text` has the form of an answer of `answer_type` (qa.question's reading of the question's form).
    Only the numeric types are checked; a name, a list or a description always fits."""
    lower = text.lower()
    checks: dict[AnswerType, Callable[[], bool]] = {
        AnswerType.PERCENT: lambda: "%" in text or "percent" in lower or "per cent" in lower,
        AnswerType.DOSE: lambda: bool(_DOSE.search(text)),
        AnswerType.DURATION: lambda: bool(_TIME.search(text)),
        AnswerType.YEAR: lambda: bool(_YEAR.search(text)),
        AnswerType.DATE: lambda: bool(_YEAR.search(text) or _MONTH.search(text) or re.search(r"\d", text)),
    }
    if answer_type in checks:
        return checks[answer_type]()
    if answer_type in NUMERIC_TYPES:
        return bool(_HAS_NUMBER.search(text))
    return True


@cache
def _answer_type(question: str) -> AnswerType:
    return analyse(question).answer_type


def transform(variant: str) -> Transform:
    """`base`, `ratio:G`, `minus:L` or `type:F` as a function of a candidate."""
    kind, _, arg = variant.partition(":")

    def null(a: Answer) -> float:
        return float(a.details.get("null_score", 0.0))

    if kind == "base":
        return lambda a: a.reader_score
    if kind == "ratio":
        g = float(arg)
        return lambda a: a.reader_score * (a.reader_score / (a.reader_score + null(a))) ** g if a.reader_score else 0.0
    if kind == "minus":
        lam = float(arg)
        return lambda a: max(0.0, a.reader_score - lam * null(a))
    if kind == "type":
        f = float(arg)
        return lambda a: a.reader_score * (1.0 if fits_answer_type(_answer_type(a.question), a.text) else f)
    raise ValueError(f"unknown variant {variant!r}; give base, ratio:G, minus:L or type:F")


def rescored(answers: Sequence[Answer], f: Transform) -> list[Answer]:
    """Each answer with `f`'s value as its reader score (and score: the trained reader's candidates carry the same
    value in both)."""
    return [a.with_reader_score(f(a)) for a in answers]


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
                    "misfit_type": sum(not fits_answer_type(_answer_type(t.question), t.text) for t in tops),
                }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", type=Path, help="a file of qa calibrate --save-candidates")
    parser.add_argument("--variants", nargs="+", default=["base", "ratio:1", "minus:0.5", "type:0.5"])
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
            "wrong": sum(s["wrong"] for s in b["sets"].values()),
            "coverage_exponent": b["coverage_exponent"],
            "retrieval_weight": b["retrieval_weight"],
            "threshold": b["threshold"],
            "f1": {name: s["f1"] for name, s in b["sets"].items()},
        }
        rows.append(row)
        print(row, flush=True)
    if args.out:
        command = "python -m eval.bench.rescoring " + " ".join(sys.argv[1:] if argv is None else argv)
        results = {
            "candidates": str(args.candidates),
            "model": meta.get("reader_model"),
            "weights_digest": meta.get("weights_digest"),
            "top_k": meta.get("top_k"),
            "top_candidates": tops,
            "rows": rows,
        }
        write_json(args.out, envelope("rescoring", command, results, before))


if __name__ == "__main__":
    main()
