#!/usr/bin/env bash
# Every figure of docs/scale-out.md, from committed code: PubMedQA's 1,000 abstracts indexed unsharded (under
# /usr/bin/time -v: the whole-build rate the PubMed sizing uses) and on 3 shards, `qa eval --index-dir` on each
# (the parity table), the corpus measurements (BM25 bytes, embedding rate), the 1M-vector benchmark, and the
# doc's generated blocks re-rendered from the JSON. Run on a quiet machine: the times are what it measures.
#
#   scripts/scale_out_figures.sh            # all of it (about 25 min on 2 cores)
#   SIZE=200000 scripts/scale_out_figures.sh    # a smaller dense benchmark
#   PARITY=0 scripts/scale_out_figures.sh       # without the two PubMedQA evaluations (the parity table)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=.
PY=.venv/bin/python
QA=.venv/bin/qa
OUT=var/scale-out
BENCH=var/bench
GOLD=../shared/benchmarks/pubmedqa/ori_pqal.json
SIZE=${SIZE:-1000000}
SHARDS=${SHARDS:-4}
mkdir -p "$OUT" "$BENCH"

# PubMedQA's abstracts as the evaluation reads them, as a JSONL corpus for `qa index`.
$PY - "$GOLD" "$OUT/pubmedqa.jsonl" <<'EOF'
import json, sys
from pathlib import Path
from eval.datasets import load_gold
with Path(sys.argv[2]).open("w", encoding="utf-8") as fh:
    for d in load_gold(Path(sys.argv[1])).documents:
        fh.write(json.dumps(d.to_json(), ensure_ascii=False) + "\n")
EOF

rm -rf "$OUT/pqa-single" "$OUT/pqa-sharded"
/usr/bin/time -v $QA index --corpus "$OUT/pubmedqa.jsonl" --index-dir "$OUT/pqa-single" 2> "$OUT/index-single.err"
$QA index --corpus "$OUT/pubmedqa.jsonl" --index-dir "$OUT/pqa-sharded" --shards 3 --engine ray
if [ "${PARITY:-1}" = 1 ]; then  # two full evaluations, reader included: about 10 more minutes
    $QA eval "$GOLD" --index-dir "$OUT/pqa-single" --report "$OUT/eval-single.json"
    $QA eval "$GOLD" --index-dir "$OUT/pqa-sharded" --report "$OUT/eval-sharded.json"
    $PY -m eval.bench.scale_shards parity docs/scale-out.md "$OUT/eval-single.json" "$OUT/eval-sharded.json"
fi

$PY -m eval.bench.scale_shards measure-corpus "$OUT/pqa-single" "$BENCH/embed-rate.json" "$BENCH/bm25-size.json"
$PY -m eval.bench.scale_shards build-rate "$OUT/index-single.err" "$OUT/pqa-single" "$BENCH/build-rate.json"
$QA bench scale --shards "$SHARDS" --size "$SIZE"
$PY -m eval.bench.scale_shards render docs/scale-out.md "$BENCH/scale-shards.json" "$BENCH/build-rate.json" \
    "$BENCH/bm25-size.json"
echo "docs/scale-out.md re-rendered from $BENCH/*.json and $OUT/eval-*.json"
