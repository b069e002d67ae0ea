"""`qa bench`: the JSON each command writes (keys and types) on tiny inputs, and the measuring helpers.

No speed is asserted here: targets live in the benchmark reports, not in timed unit tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from eval.bench.common import percentiles
from eval.bench.report import markdown_report
from eval.bench.scale import pick_default, recall_at_k, structure, synthetic

runner = CliRunner()

TINY = [
    {"id": "t1", "title": "Sorafenib", "text": "Sorafenib inhibits RAF kinases. It is approved for liver cancer."},
    {"id": "t2", "text": "The median overall survival was 16.4 months. The hazard ratio was 0.78."},
    {"id": "t3", "text": "Desmoid tumors are locally aggressive. They rarely metastasize."},
]


def _tiny_corpus(folder: Path) -> Path:
    path = folder / "tiny.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in TINY) + "\n", encoding="utf-8")
    return path


def _envelope_ok(report: dict, kind: str) -> None:
    assert report["benchmark"] == kind
    assert report["command"].startswith("qa bench ")
    assert isinstance(report["machine"]["cpus"], int)
    assert len(report["machine"]["load_before"]) == 3 and len(report["machine"]["load_after"]) == 3
    assert "git_commit" in report["code"]


def test_percentiles_are_ordered_and_counted() -> None:
    p = percentiles([float(x) for x in range(1, 101)])
    assert p["n"] == 100
    assert p["min"] <= p["p50"] <= p["p95"] <= p["p99"] <= p["max"]
    assert p["p50"] == pytest.approx(50.5)
    assert percentiles([]) == {"n": 0}


def test_recall_counts_the_exact_top_k_found() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 9, 9], [5, 6, 7, 8]])
    assert recall_at_k(found, truth, k=4) == pytest.approx((2 / 4 + 4 / 4) / 2)


def test_synthetic_vectors_have_the_structure_of_embeddings() -> None:
    vectors, queries = synthetic(4000, 100)
    assert vectors.shape == (4000, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    s = structure(vectors, queries, sample=500)
    # Not uniform on the sphere (random pairs ~0 there), and a question's own document stands out.
    assert 0.05 < s["random_pair_cosine"] < 0.3
    assert s["query_top1_cosine"] > s["query_top10_cosine"] + 0.1 > s["random_pair_cosine"] + 0.1
    again, _ = synthetic(4000, 100)
    np.testing.assert_array_equal(vectors, again)  # seeded: reruns measure the same vectors


def test_default_pick_prefers_exact_search_when_it_is_fast_enough() -> None:
    fast_flat = {"memory_mib": 10, "at_recall_target": {"single_query_ms": {"p50": 0.4}, "recall_at_10": 1.0}}
    hnsw = {
        "memory_mib": 12,
        "at_recall_target": {"efSearch": 16, "single_query_ms": {"p50": 0.1}, "recall_at_10": 0.96},
    }
    assert pick_default({"flat": fast_flat, "hnsw": hnsw})["kind"] == "flat"
    slow_flat = {**fast_flat, "at_recall_target": {"single_query_ms": {"p50": 30.0}, "recall_at_10": 1.0}}
    assert pick_default({"flat": slow_flat, "hnsw": hnsw}) == {
        "kind": "hnsw",
        "p50_ms": 0.1,
        "efSearch": 16,
        "recall_at_10": 0.96,
    }
    over_budget = {**hnsw, "memory_mib": 5000}
    assert pick_default({"hnsw": over_budget}) is None


def test_bench_scale_json_shape(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    args = ["bench", "scale", "--size", "2000", "--kind", "flat", "--kind", "ivf_sq8", "--queries", "20"]
    result = runner.invoke(app, [*args, "--no-real", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    _envelope_ok(report, "scale")
    assert report["command"] == f"qa bench {' '.join(args[1:])} --no-real --out {out}"  # enough to rerun it
    res = report["synthetic"]["2000"]
    assert res["n"] == 2000 and res["queries"] == 20
    assert set(res["kinds"]) == {"flat", "ivf_sq8"}
    flat = res["kinds"]["flat"]
    assert flat["sweep"][0]["recall_at_10"] == 1.0  # exact search is its own ground truth
    assert flat["bytes_per_vector"] >= 384 * 4
    for kind in res["kinds"].values():
        assert isinstance(kind["build_s"], float)
        for point in kind["sweep"]:
            assert 0.0 <= point["recall_at_10"] <= 1.0
            assert point["single_query_ms"]["n"] == 20
    assert res["kinds"]["ivf_sq8"]["bytes_per_vector"] < flat["bytes_per_vector"] / 2  # 8-bit codes
    assert res["default"]["kind"] in {"flat", "ivf_sq8"}
    assert "Dense retrieval at scale" in result.output


def test_unknown_kind_is_refused_with_the_choices() -> None:
    result = runner.invoke(app, ["bench", "scale", "--kind", "lsh", "--size", "1000"])
    assert result.exit_code != 0
    assert "ivf_sq8" in result.output


def test_missing_peer_environment_is_reported_not_raised(tmp_path: Path) -> None:
    from eval.bench import peers

    res = peers.run_peer("no-such-env", "txtai_bench.py", "default", tmp_path, tmp_path, "m", 1, tmp_path / "o.json")
    assert "setup.sh no-such-env" in res["error"]


@pytest.mark.model
def test_bench_indexing_json_shape_on_a_tiny_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = _tiny_corpus(tmp_path)
    monkeypatch.chdir(tmp_path)  # saved vectors go under ./var/bench
    out = tmp_path / "indexing.json"
    result = runner.invoke(
        app, ["bench", "indexing", "--corpus", str(corpus), "--backend", "torch", "--repeats", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    _envelope_ok(report, "indexing")
    (c,) = report["corpora"]
    assert c["documents"] == 3 and c["chunks"] >= 3 and c["tokens"] > 20 and c["repeats"] == 2
    assert set(c["stages_alone"]) == {"chunk_s", "faiss_build_s", "bm25_build_s"}
    t = c["backends"]["torch"]
    assert len(t["raw_s"]) == len(t["pipeline_s"]) == 2
    for key in ("raw_median_s", "pipeline_median_s", "raw_tokens_per_s", "pipeline_chunks_per_s", "efficiency"):
        assert isinstance(t[key], float) and t[key] > 0
    assert t["speedup_vs_torch_raw"] == t["efficiency"]  # torch against itself
    assert len(t["fingerprint"]) == 16
    assert (tmp_path / "var/bench/vectors/tiny.npy").is_file()
    md = markdown_report(tmp_path)
    assert "## Targets" in md and "| tiny |" in md


@pytest.mark.model
def test_request_split_times_every_stage(demo_pipeline) -> None:
    from eval.bench.latency import request_split

    split = request_split(demo_pipeline, ["Which kinases does lenvatinib inhibit?", "What are desmoid tumors?"], 1)
    assert split["n"] == 2
    for stage in ("embed", "search", "faiss", "bm25", "read", "serialise", "total"):
        assert split[stage] > 0
    assert split["total"] >= split["embed"] + split["search"]


def test_quality_gate_is_half_a_point_on_every_gated_figure() -> None:
    from eval.bench.quality import compare_to_torch

    per = {
        "torch": {"figures": {"exact_match": 50.0, "f1": 60.0, "mrr@10": 70.0, "recall@1": 40.0}},
        "onnx": {"figures": {"exact_match": 50.4, "f1": 59.6, "mrr@10": 70.0, "recall@1": 30.0}},
        "onnx-int8": {"figures": {"exact_match": 49.0, "f1": 60.0, "mrr@10": 70.0, "recall@1": 40.0}},
    }
    compare_to_torch(per)
    assert per["onnx"]["delta_points_vs_torch"]["f1"] == pytest.approx(-0.4)
    assert per["onnx"]["within_tolerance"] is True  # recall@1 is reported, not gated
    assert per["onnx-int8"]["within_tolerance"] is False  # EM one point lower
    assert "within_tolerance" not in per["torch"]


def test_a_graph_build_past_its_budget_stops_and_says_how_far_it_got() -> None:
    import faiss

    from eval.bench.scale import BuildTooLong, _add_in_steps

    vectors, _ = synthetic(3000, 1)
    index = faiss.IndexFlatIP(384)
    with pytest.raises(BuildTooLong) as err:
        _add_in_steps(index, vectors, t0=0.0, max_build_s=0.0, step=1000)
    assert err.value.added == 1000 == index.ntotal
    done = faiss.IndexFlatIP(384)
    _add_in_steps(done, vectors, t0=0.0, max_build_s=float("inf"), step=1000)
    assert done.ntotal == 3000


def test_server_timing_header_is_parsed_by_the_standard_grammar() -> None:
    from eval.bench.latency import parse_server_timing

    header = 'embed;dur=3.1, search;desc="FAISS + BM25";dur=0.5,cache, read;dur=bad, total;dur="12"'
    assert parse_server_timing(header) == {"embed": 3.1, "search": 0.5, "total": 12.0}
    assert parse_server_timing(None) == {}


@pytest.mark.model
def test_latency_http_json_has_the_median_split_per_stage(demo_pipeline, demo_settings) -> None:
    """`qa bench latency`'s HTTP half on a live server over the session's pipeline (the JSON shape it writes)."""
    from eval.bench.latency import http_run
    from eval.bench.report import latency_rows
    from service.app import create_app
    from tests.service.helpers import QUESTIONS, LiveServer, service_settings

    with LiveServer(create_app(service_settings(demo_settings), pipeline=demo_pipeline)) as server:
        res = http_run(server.url, QUESTIONS, warmup=1, requests=6, clients=2, concurrent_requests=4)
    seq = res["sequential"]
    assert seq["n_errors"] == 0 and seq["latency_ms"]["n"] == 6
    timing = seq["server_timing_ms"]
    assert set(timing) == {"embed", "search", "read", "serialise", "total"}
    assert all(isinstance(v, float) and v >= 0 for v in timing.values())
    assert res["concurrent"]["requests"] == 4 and res["concurrent"]["n_errors"] == 0
    row = latency_rows({"backends": {"torch": res}})[-1]
    assert row.startswith("| torch |") and f"{timing['embed']} / {timing['search']}" in row


def test_bench_auto_measures_what_qa_index_builds_at_its_own_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    from eval.bench.scale import IndexKind, bench_kind

    vectors, queries = synthetic(2000, 20)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    small = bench_kind(IndexKind.AUTO, vectors, queries, truth)
    assert [{k: p[k] for k in ("type", "recall_at_10")} for p in small["sweep"]] == [
        {"type": "flat", "recall_at_10": 1.0}
    ]
    monkeypatch.setattr("index.dense.FLAT_MAX_VECTORS", 1000)
    large = bench_kind(IndexKind.AUTO, vectors, queries, truth)
    assert [(p["type"], p["efSearch"]) for p in large["sweep"]] == [("hnsw-sq8", 64)]
    assert pick_default({"auto": large}) is None  # what the product picked is measured, not a candidate


@pytest.mark.model
def test_batch_speedup_times_one_by_one_against_batched(demo_pipeline) -> None:
    from eval.bench.latency import batch_speedup
    from eval.bench.questions import BUILTIN_QUESTIONS, batch_questions

    r = batch_speedup(demo_pipeline, list(BUILTIN_QUESTIONS[:3]), repeats=2)
    assert r["n"] == 3 and r["repeats"] == 2
    assert len(r["one_by_one_all_ms"]) == len(r["batched_all_ms"]) == 2
    assert r["one_by_one_ms"] > 0 and r["batched_ms"] > 0
    assert r["ratio"] == pytest.approx(r["one_by_one_ms"] / r["batched_ms"], rel=1e-2)
    assert len(batch_questions(5, gold=Path("/nonexistent"))) == 5  # without seed_dev: the built-in ones, cycled
