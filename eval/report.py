"""What a run says: a console table, the JSON report, and one JSON line per miss for reading errors by hand.

Numbers are written unrounded; only the table rounds, for the eye.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from eval.datasets import GoldSet
from eval.metrics import RETRIEVAL_MEASURES
from eval.runner import QuestionRecord, RunResult


def _summary(run: RunResult) -> dict[str, Any]:
    na = run.no_answer
    return {
        "answer": dict(run.answer),
        "no_answer": {
            "n": na.n,
            "precision": na.precision,
            "recall": na.recall,
            "abstained": na.abstained,
            "correct": na.correct,
        },
        "retrieval": dict(run.retrieval),
        "latency_ms": dict(run.latency_ms),
        "config": run.details,
    }


def gold_retrieved(record: QuestionRecord) -> bool:
    """Read runs: a gold document was among the passages read. Retrieval only: among the first 10 documents."""
    return record.gold_read if record.read else record.gold_doc_rank is not None


def question_json(record: QuestionRecord) -> dict[str, Any]:
    ex = record.example
    scores = record.retrieval or {}
    return {
        "id": ex.id,
        "question": ex.question,
        "gold": list(ex.answers),
        "gold_doc_ids": ex.gold_doc_ids,
        "answerable": ex.answerable if record.read else None,
        "predicted": record.predicted,
        "score": record.score,
        "exact_match": record.exact_match,
        "f1": record.f1,
        "abstained": record.abstained,
        "retrieved_doc_ids": record.retrieved_doc_ids,
        "read_doc_ids": record.read_doc_ids,
        "gold_doc_rank": record.gold_doc_rank,
        "gold_retrieved": gold_retrieved(record),
        **{m: scores.get(m) for m in RETRIEVAL_MEASURES},
        "latency_ms": record.latency_ms,
    }


def report_json(
    gold: GoldSet,
    run: RunResult,
    comparison: Sequence[RunResult] = (),
    skipped: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The `--report` document for `run`; with `--compare`, every run's summary under `comparison`."""
    out: dict[str, Any] = {"gold": str(gold.path), "n": len(run.records), **_summary(run)}
    out["per_question"] = [question_json(r) for r in run.records]
    if comparison:
        out["comparison"] = [_summary(r) for r in comparison]
    if skipped:
        out["skipped"] = [{"name": name, "reason": reason} for name, reason in skipped]
    return out


def error_kind(record: QuestionRecord) -> str:
    if not record.read:
        return "not_ranked_first"
    if not record.example.answerable:
        return "answered_unanswerable"
    return "abstained" if record.abstained else "wrong_answer"


def error_lines(run: RunResult) -> list[dict[str, Any]]:
    """One object per miss: enough to tell a retrieval error (gold not retrieved) from a reading error."""
    return [
        {
            "id": r.example.id,
            "question": r.example.question,
            "gold": list(r.example.answers),
            "gold_doc_ids": r.example.gold_doc_ids,
            "predicted": r.predicted,
            "score": r.score,
            "f1": r.f1,
            "error": error_kind(r),
            "retrieved_doc_ids": r.retrieved_doc_ids,
            "read_doc_ids": r.read_doc_ids,
            "gold_doc_rank": r.gold_doc_rank,
            "gold_retrieved": gold_retrieved(r),
        }
        for r in run.records
        if r.is_miss
    ]


def write_json(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_errors(path: Path, run: RunResult) -> int:
    lines = error_lines(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(lines)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_table(gold: GoldSet, runs: Sequence[RunResult]) -> Table:
    """Runs side by side; fractions in 0..1."""
    n = len(runs[0].records) if runs else 0
    table = Table(title=f"{gold.name} ({gold.format.value}, {n} questions)")
    table.add_column("run", style="bold", no_wrap=True)
    reads = not gold.retrieval_only
    if reads:
        for col in ("EM", "F1", "no-ans P", "no-ans R"):
            table.add_column(col, justify="right")
    for col in ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10", "p50 ms", "p95 ms"):
        table.add_column(col, justify="right")
    for run in runs:
        row = [run.config.name]
        if reads:
            row += [
                _fmt(run.answer["exact_match"]),
                _fmt(run.answer["f1"]),
                _fmt(run.no_answer.precision),
                _fmt(run.no_answer.recall),
            ]
        row += [_fmt(run.retrieval[m]) for m in RETRIEVAL_MEASURES]
        row += [_fmt(run.latency_ms["p50"], 1), _fmt(run.latency_ms["p95"], 1)]
        table.add_row(*row)
    return table
