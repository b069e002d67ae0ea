"""Side by side with txtai and Haystack: the same documents, the same local MiniLM folder, the same questions.

The peers run as libraries inside their own virtual environments (`scripts/peers/setup.sh` makes them under
var/peers/; the product never imports them) through `scripts/peers/*_bench.py`, which write JSON. Repetitions
interleave every framework, so the machine's load changes hit all of them alike. Our side, in this process:

- `raw encode`: `model.encode` of every whole document (the same truncation at 256 tokens the peers apply);
- `qa index`: `build_index` end to end (torch, and the ONNX int8 path): it chunks, so it encodes *all* of every
  document, with overlap, where the peers encode the first 256 (txtai default: 512) tokens of each;
- a query: the question's vector plus FAISS search (dense top 10), and our default hybrid retrieval (+ BM25,
  fusion), both in-process as the peers' are, timed in every repetition.

Indexing runs with torch's default threads (one per core) everywhere; queries with one torch thread everywhere
(what `qa serve` uses: on a busy machine a second OpenMP thread makes single questions wait at barriers).

Ratios are ours / theirs: below 1 is faster.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval.bench.common import REPO, median, percentiles, ratio, timed
from eval.bench.corpora import BenchCorpus

PEERS_DIR = REPO / "var" / "peers"
SCRIPTS = REPO / "scripts" / "peers"
# (label, venv, script, variant)
PEER_RUNS: tuple[tuple[str, str, str, str], ...] = (
    ("txtai (faiss, default)", "txtai", "txtai_bench.py", "default"),
    ("txtai (faiss, maxlength=True)", "txtai", "txtai_bench.py", "maxlength"),
    ("haystack (in-memory)", "haystack", "haystack_bench.py", "memory"),
    ("haystack (faiss-haystack)", "haystack-faiss", "haystack_bench.py", "faiss"),
)


def _write_inputs(corpus: BenchCorpus, folder: Path) -> tuple[Path, Path]:
    docs = folder / "docs.jsonl"
    with docs.open("w", encoding="utf-8") as fh:
        for d in corpus.documents:
            text = f"{d.title}. {d.text}" if d.title else d.text
            fh.write(json.dumps({"id": d.id, "text": text}, ensure_ascii=False) + "\n")
    questions = folder / "questions.json"
    questions.write_text(json.dumps(corpus.questions), encoding="utf-8")
    return docs, questions


def run_peer(
    venv: str, script: str, variant: str, docs: Path, questions: Path, model: str, queries: int, out: Path
) -> dict[str, Any]:
    python = PEERS_DIR / venv / "bin" / "python"
    if not python.is_file():
        return {"error": f"no environment {python.parent.parent}: run scripts/peers/setup.sh {venv}"}
    cmd = [str(python), str(SCRIPTS / script), "--docs", str(docs), "--questions", str(questions)]
    cmd += ["--model", model, "--variant", variant, "--queries", str(queries), "--out", str(out)]
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0 or not out.is_file():
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}"}
    return json.loads(out.read_text(encoding="utf-8"))


def _ours_query(corpus: BenchCorpus, index_dir: Path, embedder: Any, queries: int) -> dict[str, Any]:
    """Dense (vector + FAISS) and hybrid retrieval of the questions in-process, after 10 warm-up ones, with
    one torch and one FAISS thread (as `qa serve` answers, and as the peer scripts time their queries)."""
    import faiss
    import torch

    from index.store import load_index

    faiss.omp_set_num_threads(1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _time_queries(corpus, load_index(index_dir), embedder, queries)
    finally:
        torch.set_num_threads(threads)


def _time_queries(corpus: BenchCorpus, index: Any, embedder: Any, queries: int) -> dict[str, Any]:
    from index.retriever import RetrievalMode, Retriever

    retriever = Retriever(index, embedder)
    out: dict[str, Any] = {}
    qs = corpus.questions
    for mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID):
        for q in qs[:10]:
            retriever.run(q, 10, mode)
        ms = []
        for q in qs[10 : 10 + queries]:
            t0 = time.perf_counter()
            retriever.run(q, 10, mode)
            ms.append((time.perf_counter() - t0) * 1000)
        out[mode.value] = percentiles(ms)
    embed_ms = []
    for q in qs[10 : 10 + queries]:
        t0 = time.perf_counter()
        embedder.encode([q])
        embed_ms.append((time.perf_counter() - t0) * 1000)
    out["embed"] = percentiles(embed_ms)
    return out


def bench_peers(
    corpus: BenchCorpus,
    repeats: int,
    queries: int,
    peers: Sequence[str] | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    from index.embedder import Embedder
    from index.store import IndexConfig, build_index
    from runtimes.models import BUNDLED_MODEL, resolve_model_path

    model_path = resolve_model_path(BUNDLED_MODEL)
    runs = [r for r in PEER_RUNS if peers is None or r[1] in peers or r[0] in peers]
    ours = {b: Embedder(backend=b) for b in ("torch", "onnx-int8")}
    for e in ours.values():
        e.warm_up()
    whole = [f"{d.title}. {d.text}" if d.title else d.text for d in corpus.documents]
    n_tokens_whole = sum(min(ours["torch"].count_tokens(t) + 2, 256) for t in whole)
    ours["torch"].encode(whole[:16])
    ours["onnx-int8"].encode(whole[:16])

    work = Path(tempfile.mkdtemp(prefix="qa-bench-peers-"))
    timings: dict[str, list[float]] = {"raw encode (torch)": [], "qa index (torch)": [], "qa index (onnx-int8)": []}
    query_runs: dict[str, list[dict[str, Any]]] = {b: [] for b in ours}
    peer_results: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in runs}
    try:
        docs, questions = _write_inputs(corpus, work)
        for rep in range(repeats):
            s, _ = timed(lambda: ours["torch"].encode(whole))
            timings["raw encode (torch)"].append(s)
            for b in ("torch", "onnx-int8"):
                s, _ = timed(lambda b=b: build_index(corpus.documents, ours[b], work / f"index-{b}", IndexConfig()))
                timings[f"qa index ({b})"].append(s)
            for b in ours:
                query_runs[b].append(_ours_query(corpus, work / f"index-{b}", ours[b], queries))
            say(
                f"rep {rep + 1}: "
                + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in timings.items())
                + ", dense query p50 "
                + ", ".join(f"{b} {query_runs[b][-1]['dense']['p50']} ms" for b in ours)
            )
            for label, venv, script, variant in runs:
                res = run_peer(
                    venv, script, variant, docs, questions, model_path, queries, work / f"{venv}-{variant}.json"
                )
                peer_results[label].append(res)
                say(
                    f"rep {rep + 1}: {label}: "
                    + (res.get("error") or f"index {res['index_s']} s, query p50 {res['query_ms']['p50']} ms")
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ours_index = {k: {"runs_s": [round(x, 3) for x in v], "median_s": round(median(v), 3)} for k, v in timings.items()}
    # Per backend and mode: the median over repetitions of each repetition's p50 (the peers' figures likewise).
    our_query = {
        b: {m: {"p50": round(median([r[m]["p50"] for r in runs_]), 3)} for m in runs_[0]}
        for b, runs_ in query_runs.items()
    }
    summary_peers: dict[str, Any] = {}
    for label, results in peer_results.items():
        ok = [r for r in results if "error" not in r]
        if not ok:
            summary_peers[label] = {"error": results[0].get("error") if results else "not run"}
            continue
        idx = median([r["index_s"] for r in ok])
        q50 = median([r["query_ms"]["p50"] for r in ok])
        entry: dict[str, Any] = {
            "version": ok[0].get("version"),
            "index_runs_s": [r["index_s"] for r in ok],
            "index_median_s": round(idx, 3),
            "query_p50_ms": round(q50, 3),
            "query_embed_p50_ms": round(median([r["query_embed_ms"]["p50"] for r in ok]), 3),
            "ours_over_theirs": {
                "index (qa index torch)": ratio(ours_index["qa index (torch)"]["median_s"], idx),
                "index (qa index onnx-int8)": ratio(ours_index["qa index (onnx-int8)"]["median_s"], idx),
                "query (dense, torch)": ratio(our_query["torch"]["dense"]["p50"], q50),
                "query (dense, onnx-int8)": ratio(our_query["onnx-int8"]["dense"]["p50"], q50),
                "query (hybrid, torch)": ratio(our_query["torch"]["hybrid"]["p50"], q50),
            },
        }
        if "query_direct_ms" in ok[0]:
            entry["query_direct_p50_ms"] = round(median([r["query_direct_ms"]["p50"] for r in ok]), 3)
        summary_peers[label] = entry
    return {
        "corpus": corpus.name,
        "documents": len(corpus.documents),
        "whole_document_tokens": n_tokens_whole,
        "repeats": repeats,
        "queries": queries,
        "ours": {"index": ours_index, "query_ms": our_query, "query_runs": query_runs},
        "peers": summary_peers,
        "peer_runs": peer_results,
    }
