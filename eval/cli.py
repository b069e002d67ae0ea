"""`qa eval`: score the system on a gold set, one configuration or several side by side.

Registered by `cli` (the `qa` program); everything heavy is imported inside the command so `qa --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eval.datasets import GoldFormat
from qa.commands import (
    EmbeddingBackendOpt,
    ReaderBackendOpt,
    ReaderModelOpt,
    ReaderOpt,
    ReaderPrecisionOpt,
    RetrieverOpt,
)


def eval_command(
    gold: Annotated[
        Path,
        typer.Argument(
            help="Gold file: project JSONL, SQuAD v1.1/v2.0 JSON, PubMedQA ori_pqal.json, or a BEIR folder."
        ),
    ],
    corpus: Annotated[
        Path | None, typer.Option("--corpus", help="Corpus for JSONL gold (default: the built-in abstracts).")
    ] = None,
    fmt: Annotated[GoldFormat, typer.Option("--format", help="Gold format.")] = GoldFormat.AUTO,
    retriever: RetrieverOpt = None,
    reader: ReaderOpt = None,
    reader_model: ReaderModelOpt = None,
    reader_backend: ReaderBackendOpt = None,
    reader_precision: ReaderPrecisionOpt = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=50, help="Passages the reader reads.")] = None,
    embedding_backend: EmbeddingBackendOpt = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Evaluate a seeded sample of N questions.")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the JSON report here.")] = None,
    errors: Annotated[Path | None, typer.Option("--errors", help="Write one JSON line per miss here.")] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Every retriever, every reader and oracle retrieval, side by side.")
    ] = False,
    oracle: Annotated[
        bool, typer.Option("--oracle", help="Hand the reader the gold document instead of retrieving.")
    ] = False,
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Where gold-set indexes are built and reused.")] = Path(
        "var/eval-cache"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling and any stochastic model.")] = 0,
    index_dir: Annotated[
        Path | None,
        typer.Option("--index-dir", help="Evaluate this prebuilt index (sharded or not) instead of building one."),
    ] = None,
) -> None:
    """Measure answers (EM, F1, abstention) and retrieval (recall@k, MRR@10, nDCG@10) on a gold set."""
    from rich.console import Console
    from rich.markup import escape

    from common.errors import QAError
    from eval.compare import run_all
    from eval.datasets import load_gold
    from eval.report import report_json, summary_table, write_errors, write_json
    from eval.runner import EvalRunner, RunConfig
    from qa.commands import console, err_console, fail, load_settings

    try:
        settings = load_settings(
            retriever=retriever,
            reader=reader,
            reader_model=reader_model,
            reader_backend=reader_backend,
            reader_precision=reader_precision,
            top_k=top_k,
            embedding_backend=embedding_backend,
        )
        gold_set = load_gold(gold, fmt, corpus)
        if oracle and gold_set.retrieval_only:
            fail(f"{gold_set.name} is retrieval-only: oracle retrieval needs a reader")
        runner = EvalRunner(
            gold_set,
            settings,
            cache_dir=cache_dir,
            seed=seed,
            limit=limit,
            show_progress=True,
            say=lambda m: err_console.print(escape(m)),
            index_dir=index_dir,
        )
        runner.warm_up()
        primary = RunConfig(settings.retriever, None if gold_set.retrieval_only else settings.reader, oracle)
        if primary.reader is not None and (problem := runner.reader_problem(primary.reader)):
            fail(f"reader {primary.reader.value!r} unavailable: {problem}")
        results, skipped = run_all(runner, runner.configs(compare, settings.retriever, settings.reader, oracle))
    except (QAError, ValueError) as err:
        fail(str(err))
    # A pipe or file gets the whole table: rich would otherwise wrap it to 80 columns.
    (console if console.is_terminal else Console(width=200)).print(summary_table(gold_set, results))
    by_reason: dict[str, list[str]] = {}
    for name, reason in skipped:
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        err_console.print(f"[yellow]skipped[/] {escape(', '.join(names))}: {escape(reason)}")
    main = next(r for r in results if r.config == primary)
    if report is not None:
        write_json(report, report_json(gold_set, main, results if compare else (), skipped))
        err_console.print(f"report ({main.config.name}) written to {escape(str(report))}")
    if errors is not None:
        n = write_errors(errors, main)
        err_console.print(f"{n} misses ({main.config.name}) written to {escape(str(errors))}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
