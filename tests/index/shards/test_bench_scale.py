"""`qa bench scale --shards N` at a small size: the sharded IVF-SQ8 returns the single index's top 10, and the
docs' tables are generated from the report's numbers."""

from __future__ import annotations

import json

import pytest

from eval.bench.scale_shards import BEGIN, END, bench_scale_shards, pubmed_sizing, render_markdown, update_doc

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def report(ray_cluster):
    return bench_scale_shards(n=20_000, n_shards=3, n_queries=30)


def test_sharded_ivf_sq8_returns_the_single_index_top10(report):
    sh, single = report["sharded"], report["single"]
    assert sh["top10_identical_to_single"] == "30/30"
    assert sh["recall_at_10"] == single["recall_at_10"] and 0 < single["recall_at_10"] <= 1
    assert sum(r["vectors"] for r in sh["shards"]) == 20_000
    assert all(r["index_bytes"] > 0 for r in sh["shards"])
    assert sh["single_query_ms_ray_actors"]["n"] == 30


def test_docs_block_is_rendered_from_the_json(report, tmp_path):
    embed = {"chunks_per_s": 25.0, "node": "2 CPUs"}
    bm25 = {"bytes_per_chunk": 150.0}
    sizing = pubmed_sizing(report, embed, bm25)
    assert sizing["ivf_sq8_bytes_per_vector"] == report["single"]["bytes_per_vector"]
    assert sizing["embedding"]["hours_one_node"] == round(34_960_700 * 5 / 25.0 / 3600, 1)
    text = render_markdown(report, sizing)
    assert (
        f"{report['single']['single_query_ms']['p50']}" in text
        and report["sharded"]["top10_identical_to_single"] in text
    )
    (tmp_path / "scale.json").write_text(json.dumps({"runs": [report]}))
    (tmp_path / "e.json").write_text(json.dumps(embed))
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{BEGIN}\nstale numbers\n{END}\noutro\n")
    update_doc(doc, tmp_path / "scale.json", tmp_path / "e.json", None)
    out = doc.read_text()
    assert "stale numbers" not in out and out.startswith("intro\n") and out.endswith("outro\n") and text[:40] in out
