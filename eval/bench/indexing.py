"""Indexing throughput: the whole `build_index` against the same encoder alone on the same chunk texts.

Per corpus and embedding backend, in repetitions that interleave the variants (so a change in the machine's
load hits all of them alike): `raw` is `Embedder.encode` of every chunk text (for torch that is
sentence-transformers' `model.encode` and nothing else), `pipeline` is `build_index` end to end (chunking with
token counts, encoding, FAISS, BM25, writing and fsyncing the version folder). `efficiency` = raw s / pipeline s,
the share of the encoder's throughput the pipeline keeps; `speedup_vs_torch_raw` compares any backend's pipeline
with the torch encoder alone. Tokens are those the encoder sees: the chunk's tokens plus [CLS]/[SEP], truncated
at the model's max_seq_length.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.common import median, ratio, timed
from eval.bench.corpora import BenchCorpus

VECTORS_DIR = Path("var/bench/vectors")


def _stage_times(corpus: BenchCorpus, embedder: Any, config: Any) -> tuple[list[str], dict[str, float]]:
    """Chunk texts plus the time of each non-encoding stage measured on its own."""
    from index.chunking import Chunker
    from index.dense import build_dense_index
    from index.lexical import LexicalIndex
    from index.store import embedding_text

    by_id = {d.id: d for d in corpus.documents}
    chunk_s, chunks = timed(lambda: list(Chunker(config.chunking, embedder.count_tokens).chunk_all(corpus.documents)))
    texts = [embedding_text(by_id[c.doc_id], c) for c in chunks]
    dummy = np.random.default_rng(0).standard_normal((len(texts), embedder.dimension)).astype(np.float32)
    faiss_s, _ = timed(lambda: build_dense_index(dummy, config.dense_type))
    bm25_s, _ = timed(lambda: LexicalIndex.build(texts, config.bm25_k1, config.bm25_b))
    return texts, {"chunk_s": round(chunk_s, 3), "faiss_build_s": round(faiss_s, 3), "bm25_build_s": round(bm25_s, 3)}


def bench_corpus(
    corpus: BenchCorpus,
    backends: Sequence[str],
    repeats: int,
    onnx_cache_dir: Path | None = None,
    save_vectors: bool = True,
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    from index.embedder import Embedder
    from index.store import IndexConfig, build_index

    config = IndexConfig()
    embedders: dict[str, Embedder] = {}
    load_s: dict[str, float] = {}
    for b in backends:
        e = Embedder(batch_size=32, backend=b, onnx_cache_dir=onnx_cache_dir)
        load_s[b], _ = timed(e.warm_up)
        embedders[b] = e
    first = embedders[backends[0]]
    texts, stages = _stage_times(corpus, first, config)
    max_len = first.max_seq_length
    n_tokens = sum(min(first.count_tokens(t) + 2, max_len) for t in texts)
    say(f"{corpus.name}: {len(corpus.documents)} documents -> {len(texts)} chunks, {n_tokens} tokens")
    for e in embedders.values():
        e.encode(texts[:32])  # first-call costs (allocation, graph set-up) are not throughput

    raw: dict[str, list[float]] = {b: [] for b in backends}
    pipe: dict[str, list[float]] = {b: [] for b in backends}
    vectors: dict[str, np.ndarray] = {}
    work = Path(tempfile.mkdtemp(prefix="qa-bench-index-"))
    try:
        for rep in range(repeats):
            for b in backends:
                e = embedders[b]
                s, vecs = timed(lambda e=e: e.encode(texts))
                raw[b].append(s)
                vectors.setdefault(b, vecs)
                s, _ = timed(lambda e=e, b=b: build_index(corpus.documents, e, work / b, config))
                pipe[b].append(s)
                say(f"  rep {rep + 1}/{repeats} {b}: raw {raw[b][-1]:.2f} s, pipeline {pipe[b][-1]:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    torch_raw = median(raw["torch"]) if "torch" in raw else None
    per_backend: dict[str, Any] = {}
    for b in backends:
        r, p = median(raw[b]), median(pipe[b])
        per_backend[b] = {
            "load_s": round(load_s[b], 3),
            "fingerprint": embedders[b].fingerprint,
            "raw_s": [round(x, 3) for x in raw[b]],
            "pipeline_s": [round(x, 3) for x in pipe[b]],
            "raw_median_s": round(r, 3),
            "pipeline_median_s": round(p, 3),
            "raw_chunks_per_s": round(len(texts) / r, 2),
            "raw_tokens_per_s": round(n_tokens / r, 1),
            "pipeline_chunks_per_s": round(len(texts) / p, 2),
            "pipeline_tokens_per_s": round(n_tokens / p, 1),
            "efficiency": ratio(r, p),
            "speedup_vs_torch_raw": ratio(torch_raw, p) if torch_raw else None,
        }
    if "torch" in vectors:
        for b, v in vectors.items():
            if b != "torch":
                cos = (vectors["torch"] * v).sum(axis=1)
                per_backend[b]["cosine_to_torch"] = {
                    "mean": round(float(cos.mean()), 5),
                    "min": round(float(cos.min()), 5),
                }
        if save_vectors:
            VECTORS_DIR.mkdir(parents=True, exist_ok=True)
            np.save(VECTORS_DIR / f"{corpus.name}.npy", vectors["torch"])
            qvecs = embedders["torch"].encode(corpus.questions[:2000])
            np.save(VECTORS_DIR / f"{corpus.name}.questions.npy", qvecs)
    return {
        "corpus": corpus.name,
        "source": corpus.source,
        "documents": len(corpus.documents),
        "chunks": len(texts),
        "tokens": n_tokens,
        "max_seq_length": max_len,
        "repeats": repeats,
        "stages_alone": stages,
        "backends": per_backend,
    }
