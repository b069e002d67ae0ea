#!/usr/bin/env bash
# Every figure in PERFORMANCE.md, in the order they were measured (about 90 minutes on 2 busy cores).
# Peers need their environments first: scripts/peers/setup.sh. Run from the repository root with the venv built.
set -u
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "START $(date -u +%H:%M:%S) $(uptime)"
nice -n 5 qa bench indexing --corpus builtin --corpus pubmedqa:100 --corpus covidqa:3 --backend torch --backend onnx-int8 --repeats 3
echo "INDEXING DONE $(date -u +%H:%M:%S) $(uptime)"
nice -n 5 qa bench latency --backend torch --backend onnx-int8 --requests 200 --clients 8 --concurrent-requests 200 --split-repeats 5
echo "LATENCY DONE $(date -u +%H:%M:%S) $(uptime)"
nice -n 5 qa bench scale --size 10000 --size 100000 --size 1000000 --queries 200 --max-build-s 600
echo "SCALE DONE $(date -u +%H:%M:%S) $(uptime)"
nice -n 5 qa bench peers --corpus pubmedqa:100 --repeats 3 --queries 100
echo "PEERS DONE $(date -u +%H:%M:%S) $(uptime)"
nice -n 10 qa bench quality   # ran alongside the others, at a lower priority
nice -n 5 qa bench report --out var/bench/report.md
echo "END $(date -u +%H:%M:%S) $(uptime)"
