#!/usr/bin/env bash
# From a trained reader folder to the shipped one: compact weights, calibration on several dev sets at once,
# the evaluations the README reports, and the generated docs. Every figure in README.md and docs/reader.md comes
# from the JSON this script writes into docs/results/.
#
#   scripts/release_reader.sh var/reader-squad-covid        # after `qa train-reader ... --output var/reader-squad-covid`
#
# Reading settings (QA_TOP_K, QA_EXPAND_DOCUMENTS) are taken from the environment, as the service takes them.
# SKIP_HEURISTIC=1 keeps docs/results/calibration-heuristic.json (when the heuristic reader has not changed).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
SRC=${1:?usage: scripts/release_reader.sh TRAINED_READER_DIR}
QA=${QA:-.venv/bin/qa}
SHIP=qa/data/reader
SHARED=${SHARED:-../shared}
LIMIT=${LIMIT:-300}
RESULTS=docs/results
mkdir -p "$RESULTS" var/cal

SETS=(
  --set "$SHARED/gold/seed_dev.jsonl:retrieved"
  --set "$SHARED/gold/seed_dev.jsonl:without-gold"
  --set "$SHARED/benchmarks/covid_qa/covid-qa-dev.json:retrieved"
  --set "$SHARED/benchmarks/covid_qa/covid-qa-dev.json:without-gold"
  --set "$SHARED/benchmarks/squad/dev-v2.0.json:oracle"
)

echo "== compact weights into $SHIP"
rm -rf "$SHIP"
"$QA" export-reader "$SRC" "$SHIP"

echo "== calibration: the trained reader alone and combined with the heuristic one"
"$QA" calibrate --reader combined --reader-model "$SHIP" "${SETS[@]}" --limit "$LIMIT" \
  --out var/cal/trained.json --summary "$RESULTS/calibration-trained.json" --write-calibration "$SHIP" \
  --save-candidates var/cal/trained-candidates.json.gz

if [ -z "${SKIP_HEURISTIC:-}" ]; then
echo "== calibration: the heuristic reader (same sets, same sample)"
"$QA" calibrate --reader heuristic "${SETS[@]}" --limit "$LIMIT" \
  --out var/cal/heuristic.json --summary "$RESULTS/calibration-heuristic.json"
fi

echo "== oracle-context readings (no abstention)"
python3 - "$SHIP" "$SHARED" "$QA" <<'EOF' > "$RESULTS/oracle.json"
import json, subprocess, sys
ship, shared, qa = sys.argv[1:]
rows = []
# (file, sample or None, label): reading as the service reads (256-token windows, stride 64, answers <= 30 tokens)
for data, sample, label in (
    (f"{shared}/benchmarks/squad/dev-v1.1.json", 2000, "SQuAD v1.1 dev, seeded sample of 2,000, own paragraph"),
    (f"{shared}/benchmarks/covid_qa/covid-qa-test.json", None, "COVID-QA test (375 q), own paper; never trained or tuned on"),
):
    cmd = [qa, "eval-reader", ship, data, "--max-length", "256", "--stride", "64", "--max-answer-tokens", "30"]
    cmd += ["--sample", str(sample)] if sample else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    rows.append({"set": label, "reader": "trained", "questions": r["questions"], "exact_match": r["exact_match"],
                 "f1": r["f1"], "command": " ".join(cmd[1:])})
print(json.dumps(rows, indent=1))
EOF

echo "== generated docs"
.venv/bin/python -m eval.results_doc
.venv/bin/python -c "from qa.training.model_card import write_model_card; print(write_model_card('$SHIP'))"
