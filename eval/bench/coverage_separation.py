"""How well question coverage tells a question's own document from the best-ranked other one, weighting by weighting.

For every question with a gold document, coverage (`qa.coverage`) is computed for the gold document and for the
highest-ranked retrieved document that is not gold (what the reader would quote from when the corpus lacks the
answer). The AUC is the chance that the gold document covers the question more than the other one (ties count
half); "gold under 0.8" counts gold documents whose answers a calibrated exponent of 4 would cut below 0.41 of
their score. A weighting is `everyday:unseen`, the shares of IDF an everyday word weighs when the corpus uses it
and when it does not (`1:1` is plain IDF). Reads no model: tokenising and retrieval only.

    nice .venv/bin/python -m eval.bench.coverage_separation ../shared/gold/seed_dev.jsonl \
        ../shared/benchmarks/covid_qa/covid-qa-dev.json ../shared/benchmarks/pubmedqa/ori_pqal.json \
        --limit 300 --weightings 1:1 0.5:0 0.25:0 --out docs/results/coverage-separation.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from eval.bench.common import envelope, load_average, write_json
from eval.datasets import load_gold
from eval.runner import EvalRunner
from qa.commands import load_settings
from qa.coverage import coverage, question_idf

LOW_COVERAGE = 0.8
RETRIEVED = 10


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(positive > negative), ties half (the Mann-Whitney statistic over all pairs)."""
    if not positives or not negatives:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 4)


def _weighting(text: str) -> tuple[float, float]:
    everyday, _, unseen = text.partition(":")
    return float(everyday), float(unseen or everyday)


def separation(gold_path: Path, weightings: Sequence[str], limit: int | None, seed: int) -> dict:
    # The heuristic reader loads no model: retrieval and coverage are all this measures.
    runner = EvalRunner(load_gold(gold_path), load_settings(reader="heuristic"), limit=limit, seed=seed)
    runner.warm_up()
    pipe = runner.pipeline
    snap = pipe.snapshot
    gold_cov: dict[str, list[float]] = {w: [] for w in weightings}
    other_cov: dict[str, list[float]] = {w: [] for w in weightings}
    for ex in runner.examples:
        if not ex.gold_doc_ids or (not ex.answers and not runner.gold.retrieval_only):
            continue  # no gold document, or a question its own document cannot answer
        gold = set(ex.gold_doc_ids)
        passages = pipe.retrieve(ex.question, RETRIEVED, pipe.settings.retriever)
        other = next((p.chunk.doc_id for p in passages if p.chunk.doc_id not in gold), None)
        for w in weightings:
            idf = question_idf(ex.question, snap.index.lexical, *_weighting(w))
            gold_cov[w].append(coverage(idf, snap.document_terms(ex.gold_doc_ids[0])))
            if other is not None:
                other_cov[w].append(coverage(idf, snap.document_terms(other)))
    return {
        "gold": str(gold_path),
        "questions": len(next(iter(gold_cov.values()), [])),
        "weightings": {
            w: {
                "auc": auc(gold_cov[w], other_cov[w]),
                "gold_median": round(statistics.median(gold_cov[w]), 4) if gold_cov[w] else None,
                "gold_under_0.8": sum(c < LOW_COVERAGE for c in gold_cov[w]),
                "other_median": round(statistics.median(other_cov[w]), 4) if other_cov[w] else None,
            }
            for w in weightings
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=300, help="A seeded sample of N questions per set.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weightings", nargs="+", default=["1:1", "0.5:0", "0.25:0"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    before = load_average()
    sets = []
    for path in args.gold:
        row = separation(path, args.weightings, args.limit, args.seed)
        sets.append(row)
        for w, s in row["weightings"].items():
            print(f"{path.name} {w}: AUC {s['auc']} gold<0.8 {s['gold_under_0.8']}/{row['questions']}", flush=True)
    command = "python -m eval.bench.coverage_separation " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.out:
        write_json(args.out, envelope("coverage-separation", command, {"sets": sets}, before))


if __name__ == "__main__":
    main()
