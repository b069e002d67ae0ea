"""Dense retrieval at scale: latency, recall@10 against exact search, build time and memory per vector.

Vectors: synthetic ones with the structure of sentence embeddings (a direction every vector shares, topics of
very unequal size, unequal spread within a topic; queries drawn near the same topics, never copies of indexed
vectors), and the real chunk embeddings of the benchmark corpora with their real questions where
`qa bench indexing` saved them. Index kinds: exact flat, HNSW, HNSW over 8-bit scalar codes and IVF with 8-bit
scalar codes (all three built exactly as `qa index` builds them, `index.dense`), IVF with product quantisation,
and `auto`: what `qa index` builds by default for that size, at its own search setting. Each search parameter
(efSearch, nprobe) is swept; single queries run with one OpenMP thread (faster than two for one query), batches
with all threads.
Memory per vector is the serialised index size over n, which for these kinds is what they hold in memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.common import percentiles

VECTORS_DIR = Path("var/bench/vectors")
RECALL_TARGET = 0.95
DIM = 384


class IndexKind(StrEnum):
    FLAT = "flat"
    HNSW = "hnsw"
    HNSW_SQ8 = "hnsw_sq8"
    IVF_SQ8 = "ivf_sq8"
    IVF_PQ = "ivf_pq"
    AUTO = "auto"  # `qa index`'s default for the size (index.dense.resolve_dense_type), its settings unswept


SWEEPS: dict[IndexKind, tuple[str, tuple[int, ...]]] = {
    IndexKind.FLAT: ("none", (0,)),
    IndexKind.HNSW: ("efSearch", (16, 32, 64, 128, 256)),
    IndexKind.HNSW_SQ8: ("efSearch", (16, 32, 64, 128, 256)),
    IndexKind.IVF_SQ8: ("nprobe", (4, 8, 16, 32, 64, 128, 256, 512)),
    IndexKind.IVF_PQ: ("nprobe", (4, 8, 16, 32, 64, 128)),
    IndexKind.AUTO: ("as built", (0,)),
}
# The `dense_index` setting (QA_DENSE_INDEX) that builds each kind as `qa index` does.
PRODUCT_KIND = {
    IndexKind.HNSW: "hnsw",
    IndexKind.HNSW_SQ8: "hnsw-sq8",
    IndexKind.IVF_SQ8: "ivf-sq8",
    IndexKind.AUTO: "auto",
}


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class ClusterModel:
    """Topics -> documents -> chunks, and questions asked of one document each.

    Sentence embeddings are not uniform on the sphere: they share a direction (random pairs have cosine about
    0.14 for MiniLM on PubMedQA chunks), fall into topics of very unequal size, and a document's chunks sit
    together; a question is close to its document (best hit about 0.59) and much less to the rest (10th hit
    about 0.38). The defaults reproduce those three statistics of the real PubMedQA chunks and questions; the
    report prints them for both.
    """

    dim: int = DIM
    chunks_per_doc: int = 4
    docs_per_topic: int = 25
    shared: float = 0.5  # weight of the direction every vector shares
    doc_spread: float = 0.85  # documents around their topic
    chunk_spread: float = 0.6  # chunks around their document
    query_spread: float = 1.15  # questions around the document they ask about
    seed: int = 0

    def _noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.standard_normal((n, self.dim), dtype=np.float32) / math.sqrt(self.dim)

    def documents(self, n: int) -> np.ndarray:
        """Document centres of an index of n chunk vectors (the same for the corpus and its queries)."""
        rng = np.random.default_rng(self.seed)
        n_docs = max(1, n // self.chunks_per_doc)
        k = max(8, n_docs // self.docs_per_topic)
        common = _normalise(rng.standard_normal((1, self.dim)))
        topics = _normalise(rng.standard_normal((k, self.dim)) / math.sqrt(self.dim) + self.shared * common)
        sizes = rng.lognormal(0.0, 1.0, k)  # a few large topics, many small ones
        labels = rng.choice(k, size=n_docs, p=sizes / sizes.sum())
        docs = np.empty((n_docs, self.dim), dtype=np.float32)
        for i in range(0, n_docs, 100_000):
            m = min(100_000, n_docs - i)
            docs[i : i + m] = _normalise(topics[labels[i : i + m]] + self.doc_spread * self._noise(rng, m))
        return docs

    def corpus(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(n chunk vectors, document centres)."""
        docs = self.documents(n)
        rng = np.random.default_rng(self.seed + 1)
        out = np.empty((n, self.dim), dtype=np.float32)
        for i in range(0, n, 100_000):
            m = min(100_000, n - i)
            owner = np.arange(i, i + m) % len(docs)
            out[i : i + m] = _normalise(docs[owner] + self.chunk_spread * self._noise(rng, m))
        return out, docs

    def queries(self, docs: np.ndarray, n: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed + 2)
        about = rng.integers(0, len(docs), n)
        return _normalise(docs[about] + self.query_spread * self._noise(rng, n))


def synthetic(n: int, n_queries: int, model: ClusterModel = ClusterModel()) -> tuple[np.ndarray, np.ndarray]:
    vectors, docs = model.corpus(n)
    return vectors, model.queries(docs, n_queries)


def real_vectors(vectors_dir: Path = VECTORS_DIR) -> tuple[np.ndarray, np.ndarray] | None:
    """Chunk vectors and question vectors saved by `qa bench indexing`, all corpora together."""
    docs = [np.load(p) for p in sorted(vectors_dir.glob("*.npy")) if not p.name.endswith(".questions.npy")]
    queries = [np.load(p) for p in sorted(vectors_dir.glob("*.questions.npy"))]
    if not docs or not queries:
        return None
    return np.ascontiguousarray(np.concatenate(docs)), np.ascontiguousarray(np.concatenate(queries))


def structure(vectors: np.ndarray, queries: np.ndarray, sample: int = 2000) -> dict[str, float]:
    """How clustered vectors are: mean cosine of random pairs and of each query's nearest and 10th neighbour."""
    import faiss

    rng = np.random.default_rng(0)
    a = vectors[rng.integers(0, len(vectors), sample)]
    b = vectors[rng.integers(0, len(vectors), sample)]
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    scores, _ = index.search(queries[: min(len(queries), 500)], 10)
    return {
        "random_pair_cosine": round(float((a * b).sum(axis=1).mean()), 4),
        "query_top1_cosine": round(float(scores[:, 0].mean()), 4),
        "query_top10_cosine": round(float(scores[:, -1].mean()), 4),
    }


def nlist_for(n: int) -> int:
    """About 2 * sqrt(n) inverted lists (a power of two): 256 at 10k, 512 at 100k, 2048 at 1M."""
    nlist = 2 ** round(math.log2(max(16.0, 2 * math.sqrt(n))))
    return max(16, min(nlist, n // 39))


class BuildTooLong(Exception):
    """A graph build passed its time budget; `added` vectors were in after `seconds`."""

    def __init__(self, added: int, seconds: float) -> None:
        super().__init__(f"{added} vectors added in {seconds:.0f} s")
        self.added = added
        self.seconds = seconds


def build(kind: IndexKind, vectors: np.ndarray, max_build_s: float = float("inf")) -> Any:
    """The index of `kind` over `vectors`; graph kinds add in steps and give up past `max_build_s`."""
    import faiss

    n, d = vectors.shape
    ip = faiss.METRIC_INNER_PRODUCT
    t0 = time.perf_counter()
    if kind is IndexKind.FLAT:
        index = faiss.IndexFlatIP(d)
    elif kind in PRODUCT_KIND:
        from index.dense import DenseIndexType, dense_spec, new_dense_index, train_dense_index

        spec = dense_spec(DenseIndexType(PRODUCT_KIND[kind]), n)  # exactly what `qa index` builds for n vectors
        index = new_dense_index(spec, d)
        train_dense_index(index, spec, vectors)
        _add_in_steps(index, vectors, t0, max_build_s)
        return index
    else:
        nlist = nlist_for(n)
        quantizer = faiss.IndexFlatIP(d)
        if kind is IndexKind.IVF_SQ8:
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, ip)
        else:
            index = faiss.IndexIVFPQ(quantizer, d, nlist, 48, 8, ip)  # 48 bytes of codes per vector
        rng = np.random.default_rng(0)
        train_n = min(n, 40 * nlist)  # faiss asks for 39 points per centroid; more only costs training time
        index.train(vectors[np.sort(rng.choice(n, train_n, replace=False))])
    index.add(vectors)
    return index


def _add_in_steps(index: Any, vectors: np.ndarray, t0: float, max_build_s: float, step: int = 50_000) -> None:
    """HNSW insertion is incremental: adding in steps builds the same graph and lets a budget stop it (IVF
    adds are independent per vector, so the same holds)."""
    for i in range(0, len(vectors), step):
        index.add(vectors[i : i + step])
        elapsed = time.perf_counter() - t0
        if elapsed > max_build_s and i + step < len(vectors):
            raise BuildTooLong(i + step, elapsed)


def product_setting(index: Any) -> dict[str, Any]:
    """The kind `auto` built and its search setting, as the manifest would record them."""
    import faiss

    if isinstance(index, faiss.IndexHNSW):
        kind = "hnsw-sq8" if isinstance(index, faiss.IndexHNSWSQ) else "hnsw"
        return {"type": kind, "efSearch": int(index.hnsw.efSearch)}
    if isinstance(index, faiss.IndexIVF):
        return {"type": "ivf-sq8", "nprobe": int(index.nprobe)}
    return {"type": "flat"}


def set_param(index: Any, kind: IndexKind, value: int) -> None:
    import faiss

    if kind is IndexKind.AUTO:
        return  # measured at the setting `qa index` chose
    if kind in (IndexKind.HNSW, IndexKind.HNSW_SQ8):
        index.hnsw.efSearch = value
    elif kind in (IndexKind.IVF_SQ8, IndexKind.IVF_PQ):
        faiss.extract_index_ivf(index).nprobe = value


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the exact top-k found in the approximate top-k."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / k


def single_query_ms(index: Any, queries: np.ndarray, k: int, threads: int = 1) -> list[float]:
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        out = []
        for q in queries:
            t0 = time.perf_counter()
            index.search(q.reshape(1, -1), k)
            out.append((time.perf_counter() - t0) * 1000)
        return out
    finally:
        faiss.omp_set_num_threads(before)


def bench_kind(
    kind: IndexKind,
    vectors: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    k: int = 10,
    max_build_s: float = float("inf"),
) -> dict[str, Any]:
    import faiss

    t0 = time.perf_counter()
    index = build(kind, vectors, max_build_s)
    build_s = time.perf_counter() - t0
    size = int(faiss.serialize_index(index).size)
    param, values = SWEEPS[kind]
    sweep = []
    for v in values:
        set_param(index, kind, v)
        _, found = index.search(queries, k)
        lat = single_query_ms(index, queries, k)
        t0 = time.perf_counter()
        index.search(queries, k)  # the whole batch at once, all threads
        batch_s = time.perf_counter() - t0
        sweep.append(
            {
                **(product_setting(index) if kind is IndexKind.AUTO else {param: v}),
                "recall_at_10": round(recall_at_k(found, truth, k), 4),
                "single_query_ms": percentiles(lat),
                "batch_queries_per_s": round(len(queries) / batch_s, 1),
            }
        )
    ok = [s for s in sweep if s["recall_at_10"] >= RECALL_TARGET]
    best = min(ok, key=lambda s: s["single_query_ms"]["p50"]) if ok else None
    out: dict[str, Any] = {
        "build_s": round(build_s, 3),
        "bytes_per_vector": round(size / len(vectors), 1),
        "memory_mib": round(size / 2**20, 1),
        "sweep": sweep,
        "at_recall_target": best,
    }
    if kind is IndexKind.FLAT or (kind is IndexKind.AUTO and sweep[0]["type"] == "flat"):
        two = single_query_ms(index, queries, k, threads=2)
        out["single_query_ms_2_threads"] = percentiles(two)
    del index
    return out


def pick_default(results: dict[str, Any], memory_budget_mib: float = 1024) -> dict[str, Any] | None:
    """Fastest kind at recall@10 >= 0.95 within the memory budget; exact flat wins ties below 1 ms. `auto` is
    what the product picked, not a candidate."""
    candidates = []
    for kind, r in results.items():
        if kind == IndexKind.AUTO:
            continue
        best = r.get("at_recall_target")
        if best and r["memory_mib"] <= memory_budget_mib:
            candidates.append((best["single_query_ms"]["p50"], kind, best))
    if not candidates:
        return None
    flat = next((c for c in candidates if c[1] == IndexKind.FLAT), None)
    if flat and flat[0] <= 1.0:
        return {"kind": flat[1], "p50_ms": flat[0]}
    p50, kind, best = min(candidates)
    param = next(k for k in best if k not in ("recall_at_10", "single_query_ms", "batch_queries_per_s"))
    return {"kind": kind, "p50_ms": p50, param: best[param], "recall_at_10": best["recall_at_10"]}


def bench_dataset(
    name: str,
    vectors: np.ndarray,
    queries: np.ndarray,
    kinds: Sequence[IndexKind],
    estimates: dict[IndexKind, float] | None = None,
    max_build_s: float = float("inf"),
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """All kinds over one vector set; a kind whose estimated build time is over `max_build_s` is skipped."""
    import faiss

    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    t0 = time.perf_counter()
    _, truth = exact.search(queries, 10)
    del exact
    out: dict[str, Any] = {
        "n": len(vectors),
        "queries": len(queries),
        "exact_batch_s": round(time.perf_counter() - t0, 3),
        "structure": structure(vectors, queries),
        "kinds": {},
        "skipped": {},
    }
    for kind in kinds:
        est = (estimates or {}).get(kind)
        if est is not None and est > max_build_s:
            out["skipped"][kind.value] = f"estimated build {est:.0f} s > --max-build-s {max_build_s:.0f}"
            say(f"{name}: {kind.value} skipped (estimated build {est:.0f} s)")
            continue
        try:
            r = bench_kind(kind, vectors, queries, truth, max_build_s=max_build_s)
        except BuildTooLong as err:
            rate = err.added / err.seconds
            out["skipped"][kind.value] = (
                f"build stopped at --max-build-s: {err.added} of {len(vectors)} vectors in {err.seconds:.0f} s "
                f"({rate:.0f} vectors/s, so at least {len(vectors) / rate:.0f} s in all)"
            )
            say(f"{name}: {kind.value} {out['skipped'][kind.value]}")
            continue
        out["kinds"][kind.value] = r
        best = r["at_recall_target"]
        say(
            f"{name}: {kind.value} build {r['build_s']} s, {r['bytes_per_vector']} B/vector, "
            + (f"p50 {best['single_query_ms']['p50']} ms at recall {best['recall_at_10']}" if best else "recall < 0.95")
        )
    out["default"] = pick_default(out["kinds"])
    return out


def extrapolate(prev: dict[str, Any] | None, n: int) -> dict[IndexKind, float]:
    """Build-time estimates for n vectors from the previous size (graph builds grow as n log n)."""
    if not prev:
        return {}
    m = prev["n"]
    growth = (n * math.log(n)) / (m * math.log(m))
    return {IndexKind(k): r["build_s"] * growth for k, r in prev["kinds"].items()}


def bench_scale(
    sizes: Sequence[int],
    kinds: Sequence[IndexKind],
    n_queries: int,
    max_build_s: float,
    use_real: bool = True,
    say: Callable[[str], None] = lambda _m: None,
    on_progress: Callable[[dict[str, Any]], None] = lambda _out: None,
) -> dict[str, Any]:
    """Every size in turn (smallest first, so larger builds can be estimated), then the real vectors;
    `on_progress` gets the results so far after each vector set (a long run keeps what it measured)."""
    out: dict[str, Any] = {
        "recall_target": RECALL_TARGET,
        "synthetic_model": asdict(ClusterModel()),
        "synthetic": {},
        "real": None,
    }
    prev = None
    for n in sorted(sizes):
        vectors, queries = synthetic(n, n_queries)
        res = bench_dataset(f"synthetic {n}", vectors, queries, kinds, extrapolate(prev, n), max_build_s, say)
        out["synthetic"][str(n)] = res
        on_progress(out)
        prev = res
        del vectors
    real = real_vectors() if use_real else None
    if real is not None:
        vecs, qs = real
        rng = np.random.default_rng(0)
        qs = qs[np.sort(rng.choice(len(qs), min(n_queries, len(qs)), replace=False))]
        out["real"] = bench_dataset(f"real {len(vecs)}", vecs, qs, kinds, say=say)
    out["note"] = "single_query_ms: percentiles over the queries (one thread); build_s: one build"
    return out
