"""Several configurations over one gold set and one index, side by side.

Readers that cannot run here (no model configured, module not installed yet) are skipped with their reason
rather than failing the whole comparison: the other rows are still worth having.
"""

from __future__ import annotations

from collections.abc import Sequence

from eval.runner import EvalRunner, RunConfig, RunResult
from qa.readers.base import ReaderKind


def run_all(runner: EvalRunner, configs: Sequence[RunConfig]) -> tuple[list[RunResult], list[tuple[str, str]]]:
    """Results of every runnable configuration, and (name, reason) for each one skipped."""
    problems: dict[ReaderKind, str | None] = {}
    results: list[RunResult] = []
    skipped: list[tuple[str, str]] = []
    for config in configs:
        if config.reader is not None:
            if config.reader not in problems:
                problems[config.reader] = runner.reader_problem(config.reader)
            problem = problems[config.reader]
            if problem is not None:
                skipped.append((config.name, problem))
                continue
        results.append(runner.run(config))
    return results, skipped
