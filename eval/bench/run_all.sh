#!/usr/bin/env bash
# Every figure in docs/performance.md, with the commands that produced them, in the order they ran (about two hours
# on 2 cores). Peers need their environments first: scripts/peers/setup.sh. Run from the repository root.
set -u
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "START $(date -u +%H:%M:%S) $(uptime)"
nice -n 5 qa bench indexing --corpus builtin --corpus pubmedqa:100 --corpus covidqa:3 --backend torch --backend onnx-int8 --repeats 3
nice -n 5 qa bench latency --backend torch --backend onnx-int8 --requests 200 --clients 8 --concurrent-requests 200 --split-repeats 5 --out var/bench/latency-loaded.json
nice -n 10 qa bench quality   # seed_dev and COVID-QA dev, torch and onnx-int8
nice -n 5 qa bench peers --corpus pubmedqa:100 --repeats 3 --queries 100
nice -n 5 qa bench latency --backend torch --backend onnx-int8 --requests 200 --clients 8 --concurrent-requests 200 --split-repeats 5
nice -n 5 qa bench scale --size 10000 --size 100000 --size 1000000 --queries 200 --max-build-s 300
nice -n 5 qa bench indexing --corpus builtin --corpus pubmedqa --corpus covidqa --backend torch --backend onnx-int8 --repeats 3 --out var/bench/indexing-full.json
nice -n 5 qa bench scale --size 1000000 --kind hnsw_sq8 --kind ivf_sq8 --queries 200 --max-build-s 900 --no-real --out var/bench/scale-1m.json
nice -n 5 qa bench scale --size 20000 --size 30000 --size 100000 --kind flat --kind hnsw --kind hnsw_sq8 --kind ivf_sq8 --kind auto --queries 200 --no-real --out var/bench/scale-auto.json
nice -n 5 qa bench scale --size 1000000 --kind auto --queries 200 --max-build-s 1500 --no-real --out var/bench/scale-1m-auto.json
nice -n 5 qa bench report --out var/bench/report.md
echo "END $(date -u +%H:%M:%S) $(uptime)"
