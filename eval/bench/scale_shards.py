"""`qa bench scale --shards N`: one IVF-SQ8 index against N shards of it, at 1M vectors by default.

The sharded index is built as `qa index --shards N` builds one (index/shards): one quantizer trained once on
the seeded sample a single-node build uses, shared by every shard; each shard filled by its own Ray task from
the documents a stable hash assigns it (all chunks of a document on one shard). Vectors are the synthetic
MiniLM-shaped ones of `qa bench scale` (eval.bench.scale.ClusterModel), chunk i belonging to document
i mod n_documents. Reported, single-node and sharded side by side: build time (training, filling), bytes and
resident memory per shard, query p50/p95 (one query at a time, one OpenMP thread; the sharded one both merged
in-process and through one Ray actor per shard), recall@10 against exact search, and how many queries return
the single index's very top 10.

`render_markdown` turns the JSON into the tables of docs/scale-out.md, and `pubmed_sizing` the PubMed plan, so
the document's figures are generated from the measurements, never retyped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.common import percentiles, rss_mib
from eval.bench.scale import single_query_ms

K = 10


def _top10(index: Any, queries: np.ndarray) -> np.ndarray:
    return index.search(queries, K)[1]


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    from eval.bench.scale import recall_at_k

    return round(recall_at_k(found, truth, K), 4)


def _fill_shard(quantizer_bytes: np.ndarray, vectors: np.ndarray) -> tuple[bytes, float, float]:
    """A Ray task: the shared trained quantizer, filled with one shard's vectors; (index bytes, add s, RSS MiB)."""
    import faiss

    index = faiss.deserialize_index(quantizer_bytes)
    t0 = time.perf_counter()
    index.add(vectors)
    add_s = time.perf_counter() - t0
    return faiss.serialize_index(index).tobytes(), add_s, rss_mib()


class _ShardActor:
    def __init__(self, index_bytes: bytes, positions: np.ndarray, nprobe: int) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        self.index = faiss.deserialize_index(np.frombuffer(index_bytes, dtype=np.uint8))
        self.index.nprobe = nprobe
        self.positions = positions

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self.index.search(query, k)
        return scores, np.where(ids >= 0, self.positions[np.maximum(ids, 0)], -1)


def _merge(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> np.ndarray:
    scores = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    out = np.empty((len(scores), k), dtype=np.int64)
    for q in range(len(scores)):
        order = sorted(range(scores.shape[1]), key=lambda j: (-scores[q, j], ids[q, j]))[:k]
        out[q] = ids[q, order]
    return out


def bench_scale_shards(
    n: int = 1_000_000,
    n_shards: int = 4,
    n_queries: int = 200,
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    import faiss
    import ray

    from index.shards.build import init_ray

    started = not ray.is_initialized()
    if started:  # first, while the machine is not yet busy with this benchmark's own work
        init_ray(num_cpus=min(2, faiss.omp_get_max_threads() or 2))
    try:
        return _bench(n, n_shards, n_queries, say)
    finally:
        if started:
            ray.shutdown()


def _bench(n: int, n_shards: int, n_queries: int, say: Callable[[str], None]) -> dict[str, Any]:
    import faiss
    import ray

    from eval.bench.scale import ClusterModel, synthetic
    from index.dense import DenseIndexType, dense_spec, new_dense_index, train_dense_index
    from index.shards.partition import PartitionMap

    model = ClusterModel()
    t0 = time.perf_counter()
    vectors, queries = synthetic(n, n_queries, model)
    say(f"{n} synthetic vectors in {time.perf_counter() - t0:.1f} s")
    n_docs = max(1, n // model.chunks_per_doc)
    spec = dense_spec(DenseIndexType.IVF_SQ8, n)

    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    truth = _top10(exact, queries)
    exact_ms = percentiles(single_query_ms(exact, queries[:50], K))
    del exact
    say(f"exact top-10 of {n_queries} queries; flat p50 {exact_ms['p50']} ms")

    t0 = time.perf_counter()
    quantizer = new_dense_index(spec, vectors.shape[1])
    train_dense_index(quantizer, spec, vectors)
    train_s = time.perf_counter() - t0
    trained = faiss.serialize_index(quantizer)
    say(f"trained {spec.nlist} lists on {spec.train_vectors} vectors in {train_s:.1f} s")

    single = faiss.deserialize_index(trained)
    t0 = time.perf_counter()
    single.add(vectors)
    single_add_s = time.perf_counter() - t0
    single.nprobe = spec.nprobe
    single_bytes = len(faiss.serialize_index(single))
    single_top = _top10(single, queries)
    single_ms = percentiles(single_query_ms(single, queries, K))
    say(f"single node: filled in {single_add_s:.1f} s, p50 {single_ms['p50']} ms")

    pmap = PartitionMap.uniform(n_shards)
    doc_shard = np.array([pmap.shard_of(f"doc{d}") for d in range(n_docs)], dtype=np.int64)
    owner = np.arange(n) % n_docs
    rows = [np.flatnonzero(doc_shard[owner] == s) for s in range(n_shards)]
    del single  # a shard set is built next: hold one copy of the codes at a time
    cpus = int(ray.cluster_resources().get("CPU", 1))
    q_ref = ray.put(trained)
    fill = ray.remote(num_cpus=1)(_fill_shard)
    t0 = time.perf_counter()
    results = ray.get([fill.remote(q_ref, ray.put(np.ascontiguousarray(vectors[r]))) for r in rows])
    shard_wall_s = time.perf_counter() - t0
    say(f"{n_shards} shards filled by Ray tasks on {cpus} CPUs in {shard_wall_s:.1f} s")
    shards = []
    for blob, _, _ in results:
        idx = faiss.deserialize_index(np.frombuffer(blob, dtype=np.uint8))
        idx.nprobe = spec.nprobe
        shards.append(idx)

    def merged(qs: np.ndarray) -> np.ndarray:
        parts = []
        for s, idx in enumerate(shards):
            scores, ids = idx.search(qs, K)
            parts.append((scores, np.where(ids >= 0, rows[s][np.maximum(ids, 0)], -1)))
        return _merge(parts, K)

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    local_ms = []
    found = np.empty_like(truth)
    for i, q in enumerate(queries):
        t = time.perf_counter()
        found[i] = merged(q.reshape(1, -1))[0]
        local_ms.append((time.perf_counter() - t) * 1000)
    faiss.omp_set_num_threads(before)
    identical = int(sum(set(a.tolist()) == set(b.tolist()) for a, b in zip(found, single_top, strict=True)))
    actor = ray.remote(num_cpus=0)(_ShardActor)
    actors = [actor.remote(blob, rows[s], spec.nprobe) for s, (blob, _, _) in enumerate(results)]
    ray.get([a.search.remote(queries[:1], K) for a in actors])  # loaded before timing
    ray_ms = []
    for q in queries:
        t = time.perf_counter()
        parts = ray.get([a.search.remote(q.reshape(1, -1), K) for a in actors])
        _merge(parts, K)
        ray_ms.append((time.perf_counter() - t) * 1000)
    for a in actors:
        ray.kill(a)
    shard_rows = [
        {
            "shard": s,
            "vectors": len(rows[s]),
            "index_bytes": len(blob),
            "bytes_per_vector": round(len(blob) / max(1, len(rows[s])), 1),
            "fill_s": round(add_s, 2),
            "task_peak_rss_mib": worker_rss,
        }
        for s, (blob, add_s, worker_rss) in enumerate(results)
    ]
    return {
        "n_vectors": n,
        "n_shards": n_shards,
        "n_queries": n_queries,
        "dim": int(vectors.shape[1]),
        "spec": spec.to_json(),
        "vectors": "synthetic (eval.bench.scale.ClusterModel defaults)",
        "exact": {"single_query_ms": exact_ms},
        "train_s": round(train_s, 2),
        "single": {
            "fill_s": round(single_add_s, 2),
            "build_s": round(train_s + single_add_s, 2),
            "index_bytes": single_bytes,
            "bytes_per_vector": round(single_bytes / n, 1),
            "single_query_ms": single_ms,
            "recall_at_10": _recall(single_top, truth),
        },
        "sharded": {
            "ray_cpus": cpus,
            "fill_wall_s": round(shard_wall_s, 2),
            "build_s": round(train_s + shard_wall_s, 2),
            "shards": shard_rows,
            "single_query_ms_in_process": percentiles(local_ms),
            "single_query_ms_ray_actors": percentiles(ray_ms),
            "recall_at_10": _recall(found, truth),
            "top10_identical_to_single": f"{identical}/{n_queries}",
        },
        "driver_peak_rss_mib": rss_mib(),
    }


# --- PubMed sizing, from the measurements --------------------------------------------------------------------
# The corpus, from the issue: the 2023 baseline, and the project's chunking of an abstract.
PUBMED_RECORDS = 34_960_700
CHUNKS_PER_ABSTRACT = (4, 5)
TOKENS_PER_ABSTRACT = 400
NODE_GIB = 24
NODE_HEADROOM = 0.5  # half a node for codes: the rest for the OS, BM25 postings, documents and query buffers


def pubmed_sizing(scale: dict[str, Any], embed: dict[str, Any] | None, bm25: dict[str, Any] | None) -> dict[str, Any]:
    """PubMed's numbers from one `bench_scale_shards` report (bytes per vector, latency), an embedding-rate
    report (chunks per second per CPU node) and a BM25 report (bytes per chunk)."""
    lo, hi = (PUBMED_RECORDS * c for c in CHUNKS_PER_ABSTRACT)
    bpv = scale["single"]["bytes_per_vector"]
    out: dict[str, Any] = {
        "records": PUBMED_RECORDS,
        "vectors": [lo, hi],
        "ivf_sq8_bytes_per_vector": bpv,
        "flat_bytes_per_vector": scale["dim"] * 4,
        "vectors_npy_bytes_per_vector": scale["dim"] * 4,
        "ivf_sq8_gib": [round(v * bpv / 2**30, 1) for v in (lo, hi)],
        "flat_gib": [round(v * scale["dim"] * 4 / 2**30, 1) for v in (lo, hi)],
    }
    per_node = int(NODE_GIB * NODE_HEADROOM * 2**30 // bpv)
    out["vectors_per_24gib_node"] = per_node
    out["nodes_for_codes"] = [math.ceil(v / per_node) for v in (lo, hi)]
    p95_shard = scale["sharded"]["single_query_ms_in_process"]["p95"] / scale["n_shards"]
    out["query_budget_ms"] = {
        "shard_search_p95_at_1m_over_shards": round(p95_shard, 2),
        "ray_fanout_overhead_p50": round(
            scale["sharded"]["single_query_ms_ray_actors"]["p50"]
            - scale["sharded"]["single_query_ms_in_process"]["p50"],
            2,
        ),
    }
    if embed:
        cps = embed["chunks_per_s"]
        chunks = hi
        out["embedding"] = {
            "chunks_per_s_per_node": cps,
            "node": embed["node"],
            "hours_one_node": round(chunks / cps / 3600, 1),
            "hours_on_nodes": {str(n): round(chunks / cps / 3600 / n, 1) for n in (8, 32, 128)},
        }
    if bm25:
        out["bm25"] = {
            "bytes_per_chunk": bm25["bytes_per_chunk"],
            "gib": [round(v * bm25["bytes_per_chunk"] / 2**30, 1) for v in (lo, hi)],
        }
    return out


def render_markdown(scale: dict[str, Any], sizing: dict[str, Any]) -> str:
    s, sh = scale["single"], scale["sharded"]
    lines = [
        f"{scale['n_vectors']:,} vectors of {scale['dim']} dimensions, IVF-SQ8 ({scale['spec']['nlist']} lists, nprobe "
        f"{scale['spec']['nprobe']}), {scale['n_queries']} queries, one at a time on one thread:",
        "",
        "| | single node | sharded |",
        "|---|---|---|",
        f"| shards | 1 | {scale['n_shards']} (Ray tasks on {sh['ray_cpus']} CPUs) |",
        f"| build: train quantizer (once, shared) | {scale['train_s']} s | {scale['train_s']} s |",
        f"| build: fill lists | {s['fill_s']} s | {sh['fill_wall_s']} s wall |",
        f"| index bytes per vector | {s['bytes_per_vector']} | "
        + ", ".join(str(r["bytes_per_vector"]) for r in sh["shards"])
        + " |",
        f"| index size | {s['index_bytes'] / 2**20:.0f} MiB | "
        + ", ".join(f"{r['index_bytes'] / 2**20:.0f}" for r in sh["shards"])
        + " MiB |",
        "| peak RSS of a shard-filling task | | "
        + ", ".join(f"{r['task_peak_rss_mib']:.0f}" for r in sh["shards"])
        + " MiB |",
        f"| query p50 / p95 | {s['single_query_ms']['p50']} / {s['single_query_ms']['p95']} ms | "
        f"{sh['single_query_ms_in_process']['p50']} / {sh['single_query_ms_in_process']['p95']} ms in process; "
        f"{sh['single_query_ms_ray_actors']['p50']} / {sh['single_query_ms_ray_actors']['p95']} ms via Ray actors |",
        f"| recall@10 against exact search | {s['recall_at_10']} | {sh['recall_at_10']} |",
        f"| top-10 the same as the single index | | {sh['top10_identical_to_single']} |",
        f"| exact (flat) search p50, for scale | {scale['exact']['single_query_ms']['p50']} ms | |",
    ]
    z = sizing
    lines += [
        "",
        "PubMed, from these figures:",
        "",
        "| | |",
        "|---|---|",
        f"| citations (2023 baseline) | {z['records']:,} |",
        f"| vectors ({CHUNKS_PER_ABSTRACT[0]}-{CHUNKS_PER_ABSTRACT[1]} chunks an abstract) | "
        f"{z['vectors'][0] / 1e6:.0f}-{z['vectors'][1] / 1e6:.0f} million |",
        f"| IVF-SQ8 codes, measured {z['ivf_sq8_bytes_per_vector']} B/vector | "
        f"{z['ivf_sq8_gib'][0]}-{z['ivf_sq8_gib'][1]} GiB |",
        f"| exact vectors kept for updates (vectors.npy, {z['vectors_npy_bytes_per_vector']} B/vector; on disk) | "
        f"{z['flat_gib'][0]}-{z['flat_gib'][1]} GiB |",
        f"| vectors per 24 GiB node (half the node for codes) | {z['vectors_per_24gib_node'] / 1e6:.1f} million |",
        f"| nodes for the codes | {z['nodes_for_codes'][0]}-{z['nodes_for_codes'][1]} |",
        f"| Ray fan-out overhead per query (p50, measured here) | {z['query_budget_ms']['ray_fanout_overhead_p50']} ms |",
    ]
    if "embedding" in z:
        e = z["embedding"]
        lines.append(
            f"| int8 embedding, measured {e['chunks_per_s_per_node']} chunks/s on {e['node']} | "
            f"{e['hours_one_node']} h on one such node; "
            + ", ".join(f"{h} h on {n}" for n, h in e["hours_on_nodes"].items())
            + " |"
        )
    if "bm25" in z:
        b = z["bm25"]
        lines.append(
            f"| BM25 (bm25s score matrix), measured {b['bytes_per_chunk']} B/chunk | {b['gib'][0]}-{b['gib'][1]} GiB |"
        )
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- scale-shards:begin (generated by eval/bench/scale_shards.py) -->", "<!-- scale-shards:end -->"


def update_doc(doc: Path, scale_json: Path, embed_json: Path | None, bm25_json: Path | None) -> None:
    """Rewrite the generated block of `doc` from the benchmark JSON files."""
    data = json.loads(Path(scale_json).read_text())
    scale = max(data["runs"], key=lambda r: r["n_vectors"]) if "runs" in data else data
    embed = json.loads(Path(embed_json).read_text()) if embed_json and Path(embed_json).is_file() else None
    bm25 = json.loads(Path(bm25_json).read_text()) if bm25_json and Path(bm25_json).is_file() else None
    text = Path(doc).read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    block = render_markdown(scale, pubmed_sizing(scale, embed, bm25))
    Path(doc).write_text(f"{head}{BEGIN}\n{block}{END}{tail}", encoding="utf-8")


def measure_corpus(index_dir: Path, n_chunks: int = 1000) -> tuple[dict[str, Any], dict[str, Any]]:
    """From a built single-node index (PubMedQA's): int8 embedding throughput of this machine over `n_chunks`
    of its chunk texts (one process, the default embedder and batch size), and BM25 bytes per chunk on disk."""
    import os
    import platform

    from index.store import embedding_text, load_index
    from qa.pipeline import build_embedder
    from qa.settings import Settings

    index = load_index(Path(index_dir), verify_files=False)
    texts = [embedding_text(index.documents[c.doc_id], c) for c in index.chunks[:n_chunks]]
    emb = build_embedder(Settings(_env_file=None))
    emb.warm_up()
    emb.encode(texts[:32])  # first-call costs out of the timing
    t0 = time.perf_counter()
    emb.encode(texts)
    secs = time.perf_counter() - t0
    tokens = sum(emb.count_tokens(t) for t in texts)
    embed = {
        "chunks": len(texts),
        "seconds": round(secs, 2),
        "chunks_per_s": round(len(texts) / secs, 1),
        "tokens_per_s": round(tokens / secs, 1),
        "backend": emb.backend.value,
        "node": f"{os.cpu_count()} CPUs ({platform.machine()})",
        "load_before": round(os.getloadavg()[0], 2),
    }
    bm25_dir = index.path / "bm25"
    size = sum(p.stat().st_size for p in bm25_dir.rglob("*") if p.is_file())
    bm25 = {"chunks": len(index.chunks), "bytes": size, "bytes_per_chunk": round(size / len(index.chunks), 1)}
    return embed, bm25


PARITY_BEGIN = "<!-- parity:begin (generated by eval/bench/scale_shards.py) -->"
PARITY_END = "<!-- parity:end -->"
PARITY_METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")


def render_parity(single: dict[str, Any], sharded: dict[str, Any]) -> str:
    """`qa eval --report` of an unsharded and a sharded index of the same corpus, side by side."""
    a, b = single["retrieval"], sharded["retrieval"]
    rows = [
        f"`qa eval {Path(single['gold']).name}` ({single['n']} questions, {single['config']['name']}), "
        f"{single['config']['n_documents']} documents as {single['config']['n_chunks']} chunks:",
        "",
        "| | unsharded | sharded | difference |",
        "|---|---|---|---|",
    ]
    rows += [f"| {m} | {a[m]:.4f} | {b[m]:.4f} | {abs(a[m] - b[m]):.4f} |" for m in PARITY_METRICS]
    same = sum(
        x["retrieved_doc_ids"] == y["retrieved_doc_ids"] and x.get("predicted") == y.get("predicted")
        for x, y in zip(single["per_question"], sharded["per_question"], strict=True)
    )
    rows.append(f"| questions with the same ranked top-10 documents (and answer) | | {same}/{single['n']} | |")
    return "\n".join(rows) + "\n"


def update_parity(doc: Path, single_json: Path, sharded_json: Path) -> None:
    single, sharded = (json.loads(Path(p).read_text()) for p in (single_json, sharded_json))
    text = Path(doc).read_text(encoding="utf-8")
    head, rest = text.split(PARITY_BEGIN, 1)
    _, tail = rest.split(PARITY_END, 1)
    Path(doc).write_text(f"{head}{PARITY_BEGIN}\n{render_parity(single, sharded)}{PARITY_END}{tail}", encoding="utf-8")


def build_rate(time_log: Path, index_dir: Path) -> dict[str, Any]:
    """Chunks per second of a whole `qa index` run (model load, chunking, embedding, BM25, writing), from its
    `/usr/bin/time -v` log and the index it built: a conservative embedding rate for the sizing."""
    import os
    import re

    from index.store import read_manifest

    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", time_log.read_text())
    if m is None:
        raise ValueError(f"{time_log}: no /usr/bin/time -v elapsed line")
    secs = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    chunks = read_manifest(Path(index_dir))[1].corpus.n_chunks
    cpu = re.search(r"Percent of CPU this job got: (\d+)%", time_log.read_text())
    return {
        "chunks": chunks,
        "seconds": round(secs, 1),
        "chunks_per_s": round(chunks / secs, 1),
        "what": f"whole `qa index` run of {index_dir} ({time_log})",
        "node": f"{os.cpu_count()} CPUs",
        "cpu_percent": int(cpu.group(1)) if cpu else None,
    }


def main(argv: list[str] | None = None) -> int:
    """python -m eval.bench.scale_shards render DOC SCALE_JSON [EMBED_JSON [BM25_JSON]]
    python -m eval.bench.scale_shards measure-corpus INDEX_DIR EMBED_JSON BM25_JSON
    python -m eval.bench.scale_shards parity DOC EVAL_UNSHARDED_JSON EVAL_SHARDED_JSON
    python -m eval.bench.scale_shards build-rate TIME_V_LOG INDEX_DIR OUT_JSON"""
    import sys

    from eval.bench.common import write_json

    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 3 and args[0] == "render":
        update_doc(Path(args[1]), Path(args[2]), *(Path(a) for a in args[3:5]))
        return 0
    if len(args) == 4 and args[0] == "measure-corpus":
        embed, bm25 = measure_corpus(Path(args[1]))
        write_json(Path(args[2]), embed)
        write_json(Path(args[3]), bm25)
        return 0
    if len(args) == 4 and args[0] == "build-rate":
        write_json(Path(args[3]), build_rate(Path(args[1]), Path(args[2])))
        return 0
    if len(args) == 4 and args[0] == "parity":
        update_parity(Path(args[1]), Path(args[2]), Path(args[3]))
        return 0
    print(main.__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
