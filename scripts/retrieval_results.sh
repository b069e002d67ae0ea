#!/usr/bin/env bash
# Document-retrieval figures for the README, measured through the served path: `qa eval` ranks with the service's
# own retriever (abbreviation-expanded BM25 + FAISS, z-score fusion), the order `/ask` returns its passages in
# (tests/eval/test_served_parity.py). Writes docs/results/retrieval.json; `python -m eval.results_doc` renders it.
#
#   scripts/retrieval_results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
QA=${QA:-.venv/bin/qa}
SHARED=${SHARED:-../shared}
mkdir -p var/retrieval docs/results
python3 - "$QA" "$SHARED" <<'PY' > docs/results/retrieval.json
import json, subprocess, sys
qa, shared = sys.argv[1:]
rows = []
for gold, label in (
    (f"{shared}/gold/seed_dev.jsonl", "seed_dev (built-in abstracts)"),
    (f"{shared}/benchmarks/covid_qa/covid-qa-dev.json", "COVID-QA dev (papers)"),
    (f"{shared}/benchmarks/pubmedqa/ori_pqal.json", "PubMedQA (1,000 abstracts)"),
):
    report = f"var/retrieval/{gold.rsplit('/', 1)[-1]}.report.json"
    cmd = [qa, "eval", gold, "--reader", "heuristic", "--retriever", "hybrid", "--report", report]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    r = json.load(open(report, encoding="utf-8"))
    rows.append({"set": label, "questions": r["n"], "retrieval": r["retrieval"], "command": " ".join(cmd[1:])})
print(json.dumps(rows, indent=1))
PY
.venv/bin/python -m eval.results_doc
