"""How many passages should the reader read? `qa calibrate` once per top_k, each with its own best setting.

Each top_k gets the full calibration (threshold, retrieval weight, coverage exponent chosen as the best mean F1
over the same dev sets at once), so the comparison is between each depth at its best, not at one shared
threshold. The report keeps, per top_k, the mean F1, the chosen setting, every set's F1 and wrong answers, and
the reading time per question. `qa.settings.DEFAULT_TOP_K` cites it.

    .venv/bin/python -m eval.bench.top_k --top-k 2 3 4 5 8 10 --limit 300 \\
        --set ../shared/gold/seed_dev.jsonl:retrieved --set ../shared/gold/seed_dev.jsonl:without-gold \\
        --set ../shared/benchmarks/covid_qa/covid-qa-dev.json:retrieved \\
        --set ../shared/benchmarks/covid_qa/covid-qa-dev.json:without-gold \\
        --set ../shared/benchmarks/squad/dev-v2.0.json:oracle --out docs/results/top-k.json

`--from-summaries` collects `qa calibrate --summary` files already written (one per top_k) instead of running.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from eval.bench.common import envelope, load_average, write_json


def row(summary: dict[str, Any]) -> dict[str, Any]:
    """One top_k's line: its best setting, mean F1, each set's F1 and wrong answers, and reading time."""
    best = summary["best"]
    sets = {name: {"f1": s["f1"], "wrong": s["wrong"]} for name, s in best["sets"].items()}
    return {
        "top_k": summary["top_k"],
        "mean_f1": best["mean_f1"],
        "threshold": best["threshold"],
        "retrieval_weight": best["retrieval_weight"],
        "coverage_exponent": best.get("coverage_exponent"),
        "wrong": sum(s["wrong"] for s in sets.values()),
        "sets": sets,
        "read_ms_per_question": summary.get("read_ms_per_question", {}),
    }


def collect(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by top_k; refuses summaries that differ in anything but top_k (reader, sets, sample, precision)."""
    keys = ("reader", "reader_model", "expand_documents", "reader_precision", "limit", "seed", "wrong_answer_cost")
    first = summaries[0]
    for s in summaries[1:]:
        differ = [k for k in keys if s.get(k) != first.get(k)] + (
            ["sets"] if list(s["best"]["sets"]) != list(first["best"]["sets"]) else []
        )
        if differ:
            raise ValueError(f"the summaries differ in {', '.join(differ)}, not only in top_k")
    if len({s["top_k"] for s in summaries}) != len(summaries):
        raise ValueError("two summaries have the same top_k")
    return sorted((row(s) for s in summaries), key=lambda r: r["top_k"])


def calibrate(top_k: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    out = folder / f"top-k-{top_k}.json"
    cmd = [args.qa, "calibrate", "--reader", "transformers", "--reader-model", args.reader_model]
    cmd += ["--top-k", str(top_k), "--limit", str(args.limit), "--summary", str(out), "--out", str(folder / "cal")]
    for s in args.set:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top-k", type=int, nargs="+", default=[3, 5, 8, 10])
    parser.add_argument("--set", action="append", default=[], help="as qa calibrate --set; repeat")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--reader-model", default="qa/data/reader")
    parser.add_argument("--qa", default=str(Path(sys.executable).with_name("qa")), help="the qa command")
    parser.add_argument("--from-summaries", type=Path, nargs="+", help="collect these instead of calibrating")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    before = load_average()
    if args.from_summaries:
        summaries = [json.loads(p.read_text(encoding="utf-8")) for p in args.from_summaries]
    else:
        if not args.set:
            parser.error("give the dev sets (--set), as qa calibrate takes them")
        with tempfile.TemporaryDirectory() as tmp:
            summaries = [calibrate(k, args, Path(tmp)) for k in args.top_k]
    rows = collect(summaries)
    for r in rows:
        print(r["top_k"], r["mean_f1"], r["wrong"], {n: s["f1"] for n, s in r["sets"].items()}, flush=True)
    meta = {k: summaries[0].get(k) for k in ("reader", "reader_model", "reader_precision", "limit")}
    command = "python -m eval.bench.top_k " + " ".join(sys.argv[1:] if argv is None else argv)
    write_json(args.out, envelope("top-k", command, {**meta, "rows": rows}, before))


if __name__ == "__main__":
    main()
