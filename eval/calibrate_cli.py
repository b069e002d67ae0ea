"""`qa calibrate`: read several dev sets once, then sweep the reader's threshold and retrieval weight.

Each `--set GOLD:CONDITION` is one dev set (`retrieved`, `oracle` or `without-gold`: see eval.calibration).
The report holds every (weight, threshold) row with each set's scores and wrong answers, and the row with the best
mean utility (SQuAD 2.0 F1, less `--wrong-answer-cost` per wrong answer: eval.calibration.WRONG_ANSWER_COST); then, at
that row, every secondary ratio (how far below the best answer a further answer may still be listed) with the
listed answers' scores, and the ratio with the best mean list F1.

Reading the sets takes minutes, the sweep seconds: `--save-candidates FILE` keeps every question's candidates, and
`--from-candidates FILE` (instead of `--set`) sweeps them again, under other grids, without reading.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from index.embedder import EmbedderBackend
from qa.readers.base import ReaderKind

DEFAULT_WEIGHTS = "0,0.1,0.2,0.3,0.5"
DEFAULT_THRESHOLDS = ",".join(f"{t / 100:.2f}" for t in range(0, 100, 5))
DEFAULT_HEURISTIC_WEIGHTS = "0.1,0.2,0.3,0.5,0.7"
DEFAULT_COVERAGE_EXPONENTS = "0,0.5,1,2,3,4,6"  # 3 won at the edge of 0-3 (calibration of 2026-12-03)
DEFAULT_SECONDARY_RATIOS = "0,0.25,0.5,0.6,0.7,0.8,0.9,1"


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated numbers, got {text!r}") from None


def calibrate_command(
    out: Annotated[Path, typer.Option("--out", help="Write the JSON report (every row) here.")],
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="GOLD:CONDITION, condition one of retrieved, oracle, without-gold; repeat."),
    ] = None,
    summary: Annotated[
        Path | None, typer.Option("--summary", help="Also write the report without the full sweep (for docs/).")
    ] = None,
    reader: Annotated[ReaderKind, typer.Option("--reader")] = ReaderKind.TRANSFORMERS,
    reader_model: Annotated[str | None, typer.Option("--reader-model")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=50)] = None,
    expand_documents: Annotated[int | None, typer.Option("--expand-documents", min=0, max=20)] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="A seeded sample of N questions per set.")] = None,
    weights: Annotated[str, typer.Option("--weights", help="Retrieval weights to try.")] = DEFAULT_WEIGHTS,
    thresholds: Annotated[str, typer.Option("--thresholds", help="Thresholds to try.")] = DEFAULT_THRESHOLDS,
    heuristic_weights: Annotated[
        str,
        typer.Option(
            "--heuristic-weights",
            help="With --reader combined: heuristic shares to try (the trained reader alone is always tried).",
        ),
    ] = DEFAULT_HEURISTIC_WEIGHTS,
    coverage_exponents: Annotated[
        str,
        typer.Option(
            "--coverage-exponents",
            help="Exponents of question coverage to try (qa/coverage.py; 0 is off and always tried).",
        ),
    ] = DEFAULT_COVERAGE_EXPONENTS,
    secondary_ratios: Annotated[
        str,
        typer.Option(
            "--secondary-ratios",
            help="Shares of the best answer's score a further answer needs to be listed (0 is off and always "
            "tried); chosen after the threshold, by the listed answers' mean F1.",
        ),
    ] = DEFAULT_SECONDARY_RATIOS,
    wrong_answer_cost: Annotated[
        float,
        typer.Option(
            "--wrong-answer-cost",
            min=0.0,
            help="What a wrong answer costs in the utility the setting is chosen on (a right one earns its F1, an "
            "abstention 0, a right abstention 1; eval.calibration.WRONG_ANSWER_COST). 0: plain SQuAD 2.0 F1.",
        ),
    ] = 0.0,
    embedding_backend: Annotated[EmbedderBackend | None, typer.Option("--embedding-backend")] = None,
    cache_dir: Annotated[Path, typer.Option("--cache-dir")] = Path("var/eval-cache"),
    seed: Annotated[int, typer.Option("--seed")] = 0,
    save_candidates: Annotated[
        Path | None,
        typer.Option(
            "--save-candidates",
            help="Also write every question's candidate answers (gzipped JSON), for --from-candidates.",
        ),
    ] = None,
    from_candidates: Annotated[
        Path | None,
        typer.Option(
            "--from-candidates",
            help="Sweep the candidates a --save-candidates run wrote instead of reading the sets again (no --set; "
            "the reading settings are the file's).",
        ),
    ] = None,
    write_calibration: Annotated[
        Path | None,
        typer.Option(
            "--write-calibration",
            help="Reader folder: write the chosen threshold and weight there as calibration.json (and refresh "
            "its MODEL_CARD.md when it has a training.json).",
        ),
    ] = None,
) -> None:
    """Choose the abstention threshold and retrieval weight on several dev sets at once (mean F1, less
    --wrong-answer-cost per wrong answer)."""
    from rich.markup import escape
    from tqdm import tqdm

    from common.errors import QAError
    from eval.calibration import (
        Condition,
        best,
        best_secondary,
        collect,
        load_candidates,
        secondary_sweep,
        sweep,
        weights_digest,
        write_candidates,
    )
    from eval.datasets import load_gold
    from eval.runner import EvalRunner
    from qa.commands import err_console, fail, load_settings

    if bool(sets) == (from_candidates is not None):
        fail("give the dev sets to read (--set, repeated) or a candidates file (--from-candidates), one of the two")
    parsed: list[tuple[Path, Condition]] = []
    for spec in sets or []:
        path, _, cond = spec.rpartition(":")
        try:
            parsed.append((Path(path), Condition(cond)))
        except ValueError:
            fail(f"--set {spec!r}: expected GOLD:CONDITION with a condition in {', '.join(c.value for c in Condition)}")
    settings = load_settings(
        reader=reader,
        reader_model=reader_model,
        top_k=top_k,
        expand_documents=expand_documents,
        embedding_backend=embedding_backend,
    )
    combined = reader is ReaderKind.COMBINED
    collected = {}
    timing = {}
    precision = None  # the arithmetic the trained reader read in (auto resolves per machine): recorded with it
    runners: dict[Path, EvalRunner] = {}
    if from_candidates is not None:
        try:
            collected, meta = load_candidates(from_candidates)
        except ValueError as err:
            fail(str(err))
        reader, combined = ReaderKind(meta["reader"]), meta["combined"]
        settings = settings.model_copy(
            update={k: meta[k] for k in ("reader_model", "top_k", "expand_documents", "max_answers")}
        )
        precision, limit, seed, timing = meta["reader_precision"], meta["limit"], meta["seed"], meta["timing"]
        if write_calibration is not None and weights_digest(write_calibration) != meta["weights_digest"]:
            fail(
                f"{from_candidates} was read with other weights than {write_calibration}'s "
                f"({meta['reader_model']}); read the sets again with --set to calibrate that folder"
            )
    primary = ReaderKind.TRANSFORMERS if combined else reader
    mixes: list[float | None] = [None, *(_floats(heuristic_weights, "--heuristic-weights") if combined else [])]
    try:
        for path, cond in parsed:
            if path not in runners:
                runner = EvalRunner(load_gold(path), settings, cache_dir=cache_dir, seed=seed, limit=limit)
                runner.say = lambda m: err_console.print(escape(m))
                runner.warm_up()
                runners[path] = runner
            runner = runners[path]
            name = f"{path.name}:{cond.value}"
            t0 = time.perf_counter()
            with tqdm(total=len(runner.examples), desc=name, unit="q", mininterval=5) as bar:
                collected[name] = collect(runner, cond, primary, on_progress=bar.update, with_heuristic=combined)
            timing[name] = round((time.perf_counter() - t0) * 1000 / max(1, len(runner.examples)), 1)
    except (QAError, ValueError) as err:
        fail(str(err))
    if primary is ReaderKind.TRANSFORMERS and runners:
        precision = str(next(iter(runners.values())).pipeline.reader(primary).active_precision)
    if save_candidates is not None:
        meta = {
            "reader": reader.value,
            "combined": combined,
            "reader_model": settings.reader_model,
            "weights_digest": weights_digest(settings.reader_model) if primary is ReaderKind.TRANSFORMERS else None,
            "top_k": settings.top_k,
            "expand_documents": settings.expand_documents,
            "max_answers": settings.max_answers,
            "reader_precision": precision,
            "limit": limit,
            "seed": seed,
            "timing": timing,
        }
        write_candidates(save_candidates, collected, meta)
        typer.echo(f"wrote {save_candidates}")
    exponents = sorted({0.0, *_floats(coverage_exponents, "--coverage-exponents")})
    if any(e < 0 for e in exponents):
        fail("--coverage-exponents must be >= 0")
    ratios = sorted({0.0, *_floats(secondary_ratios, "--secondary-ratios")})
    if any(not 0 <= r <= 1 for r in ratios):
        fail("--secondary-ratios must lie in [0, 1]")
    rows = sweep(
        collected,
        _floats(weights, "--weights"),
        _floats(thresholds, "--thresholds"),
        mixes,
        exponents,
        wrong_answer_cost,
    )
    alone = best([r for r in rows if r["heuristic_weight"] is None])
    mixed = [r for r in rows if r["heuristic_weight"] is not None]
    best_mix = best(mixed) if mixed else None
    chosen = best(rows)
    # The listing is chosen after the top answer and abstention are: it changes neither.
    listing_alone = secondary_sweep(collected, alone, ratios, settings.max_answers)
    listing_chosen = (
        listing_alone if chosen is alone else secondary_sweep(collected, chosen, ratios, settings.max_answers)
    )
    secondary_alone, secondary_chosen = best_secondary(listing_alone), best_secondary(listing_chosen)

    def curve(row: dict) -> list[dict]:
        """Every threshold at the row's weights: how answering trades against abstaining."""
        keep = (row["heuristic_weight"], row["coverage_exponent"], row["retrieval_weight"])
        return [r for r in rows if (r["heuristic_weight"], r["coverage_exponent"], r["retrieval_weight"]) == keep]

    report = {
        "reader": reader.value,
        "reader_model": settings.reader_model,
        "top_k": settings.top_k,
        "expand_documents": settings.expand_documents,
        "reader_precision": precision,
        "limit": limit,
        "seed": seed,
        "wrong_answer_cost": wrong_answer_cost,
        "read_ms_per_question": timing,
        "best": chosen,
        "best_reader_alone": alone,
        # The best mix with the heuristic reader, reported even when the reader alone wins (the README shows both).
        "best_combined": best_mix,
        "curve": curve(chosen),
        "curve_reader_alone": curve(alone),
        "max_answers": settings.max_answers,
        "secondary": secondary_chosen,
        "secondary_reader_alone": secondary_alone,
        "listing": listing_chosen,
        "listing_reader_alone": listing_alone,
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
        brief = {k: v for k, v in report.items() if k != "rows"}
        summary.write_text(json.dumps(brief, indent=1) + "\n", encoding="utf-8")
    for label, row in (("reader alone", alone), ("best", chosen)):
        typer.echo(
            f"{label}: heuristic weight {row['heuristic_weight']} coverage exponent {row['coverage_exponent']} "
            f"retrieval weight {row['retrieval_weight']} "
            f"threshold {row['threshold']} mean utility {row['mean_utility']} mean F1 {row['mean_f1']}"
        )
        for name, s in row["sets"].items():
            typer.echo(f"  {name}: {json.dumps(s)}")
    for label, row in (("reader alone", secondary_alone), ("best", secondary_chosen)):
        typer.echo(f"{label}: secondary ratio {row['secondary_ratio']} mean list F1 {row['mean_list_f1']}")
        for name, s in row["sets"].items():
            typer.echo(f"  {name}: {json.dumps(s)}")
    zero = next((r for r in rows if r["retrieval_weight"] == chosen["retrieval_weight"] and r["threshold"] == 0), None)
    if zero is not None:
        typer.echo(f"same weight, never abstaining: mean utility {zero['mean_utility']} mean F1 {zero['mean_f1']}")
    if write_calibration is not None:
        from qa.readers.transformers_reader import CALIBRATION_FILE
        from qa.training.model_card import write_model_card

        calibration = {
            "min_answer_score": alone["threshold"],
            "retrieval_weight": alone["retrieval_weight"],
            "coverage_exponent": alone["coverage_exponent"],
            "secondary_ratio": secondary_alone["secondary_ratio"],
            "top_k": settings.top_k,
            "expand_documents": settings.expand_documents,
            "reader_precision": precision,
            "chosen_by": (
                f"best mean utility over the dev sets (SQuAD 2.0 F1, less {wrong_answer_cost} per wrong answer), then "
                "mean F1; qa calibrate"
            ),
            "wrong_answer_cost": wrong_answer_cost,
            "mean_utility": alone["mean_utility"],
            "mean_f1": alone["mean_f1"],
            "sets": alone["sets"],
            "listing": secondary_alone,
        }
        if best_mix is not None:
            # What `--reader combined` runs (CombinedReader.warm_up), written whichever reader won: the README
            # reports this mix beside the reader alone, so a user who picks it gets the setting reported.
            secondary_mix = (
                secondary_chosen
                if best_mix is chosen
                else best_secondary(secondary_sweep(collected, best_mix, ratios, settings.max_answers))
            )
            calibration["combined"] = {
                "heuristic_weight": best_mix["heuristic_weight"],
                "min_answer_score": best_mix["threshold"],
                "retrieval_weight": best_mix["retrieval_weight"],
                "coverage_exponent": best_mix["coverage_exponent"],
                "secondary_ratio": secondary_mix["secondary_ratio"],
                "mean_utility": best_mix["mean_utility"],
                "mean_f1": best_mix["mean_f1"],
                "sets": best_mix["sets"],
                "listing": secondary_mix,
            }
        target = write_calibration / CALIBRATION_FILE
        target.write_text(json.dumps(calibration, indent=1) + "\n", encoding="utf-8")
        typer.echo(f"wrote {target}")
        if (write_calibration / "training.json").is_file():
            typer.echo(f"wrote {write_model_card(write_calibration)}")


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
