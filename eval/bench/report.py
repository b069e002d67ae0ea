"""Text for people: a short summary of one benchmark's JSON, and one Markdown report of all of them with the
issue's targets marked met or missed (the JSON files stay the record; this only reads them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGETS = {
    "indexing_efficiency": 0.9,  # pipeline / raw encoder throughput, torch
    "indexing_int8_speedup": 1.5,  # int8 pipeline / torch raw encoder throughput
    "ask_p50_ms": 50.0,
    "ask_p95_ms": 120.0,
    "ask_rps_8_clients": 30.0,
    "scale_1m_p50_ms": 5.0,
    "scale_1m_recall": 0.95,
    "scale_1m_mib": 1024.0,
}


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "missed")


def _load_line(report: dict[str, Any]) -> str:
    m = report.get("machine", {})
    return (
        f"{m.get('cpus')} CPUs, load average (1/5/15 min) before {m.get('load_before')}, after {m.get('load_after')}; "
        f"commit {report.get('code', {}).get('git_commit')}"
    )


def indexing_rows(report: dict[str, Any]) -> list[str]:
    rows = [
        "| corpus | chunks | tokens | backend | raw encode s | pipeline s | pipeline chunks/s | pipeline tokens/s "
        "| efficiency (raw/pipeline) | other stages alone s | vs torch raw |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in report.get("corpora", []):
        # Chunking (with token counts), FAISS and BM25 timed on their own: the load-independent overhead.
        other = round(sum(c.get("stages_alone", {}).values()), 3)
        for b, r in c["backends"].items():
            rows.append(
                f"| {c['corpus']} | {c['chunks']} | {c['tokens']} | {b} | {r['raw_median_s']} | {r['pipeline_median_s']} "
                f"| {r['pipeline_chunks_per_s']} | {r['pipeline_tokens_per_s']} | {r['efficiency']} | {other} "
                f"| {r['speedup_vs_torch_raw']} |"
            )
    return rows


def latency_rows(report: dict[str, Any]) -> list[str]:
    rows = [
        "| backend | /ask p50 ms | p95 ms | p99 ms | concurrent req/s (clients) | split: embed / search / read / serialise ms "
        "| Server-Timing medians: embed / search / read / serialise ms |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for b, r in report.get("backends", {}).items():
        seq = r.get("sequential", {}).get("latency_ms", {})
        conc = r.get("concurrent", {})
        s = r.get("split_ms", {})
        t = r.get("sequential", {}).get("server_timing_ms") or {}
        served = " / ".join(str(t.get(k, "-")) for k in ("embed", "search", "read", "serialise"))
        rows.append(
            f"| {b} | {seq.get('p50', '-')} | {seq.get('p95', '-')} | {seq.get('p99', '-')} "
            f"| {conc.get('throughput_rps', '-')} ({conc.get('clients', '-')}) "
            f"| {s.get('embed')} / {s.get('search')} / {s.get('read')} / {s.get('serialise')} (total {s.get('total')}) "
            f"| {served} |"
        )
    return rows


def scale_rows(report: dict[str, Any]) -> list[str]:
    rows = [
        "| vectors | kind | build s | bytes/vector | MiB | p50 ms at recall@10 >= 0.95 | recall@10 | setting |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    sets = [(f"synthetic {n}", r) for n, r in report.get("synthetic", {}).items()]
    if report.get("real"):
        sets.append((f"real {report['real']['n']}", report["real"]))
    for name, r in sets:
        for kind, k in r["kinds"].items():
            best = k.get("at_recall_target")
            if best:
                setting = ", ".join(f"{p}={v}" for p, v in best.items() if p in ("type", "efSearch", "nprobe"))
                p50, rec = best["single_query_ms"]["p50"], best["recall_at_10"]
            else:
                top = max(k["sweep"], key=lambda s: s["recall_at_10"])
                setting, p50, rec = "never reaches 0.95", "-", top["recall_at_10"]
            rows.append(
                f"| {name} | {kind} | {k['build_s']} | {k['bytes_per_vector']} | {k['memory_mib']} | {p50} | {rec} "
                f"| {setting} |"
            )
        for kind, why in r.get("skipped", {}).items():
            rows.append(f"| {name} | {kind} | skipped: {why} | | | | | |")
    return rows


def peers_rows(report: dict[str, Any]) -> list[str]:
    ours = report.get("ours", {})
    rows = [
        "| system | index s | query p50 ms | ours/theirs index (torch, int8) | ours/theirs query (dense torch, int8) |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for label, v in ours.get("index", {}).items():
        q = ""
        if label == "qa index (torch)":
            q = ours.get("query_ms", {}).get("torch", {}).get("dense", {}).get("p50", "")
        if label == "qa index (onnx-int8)":
            q = ours.get("query_ms", {}).get("onnx-int8", {}).get("dense", {}).get("p50", "")
        rows.append(f"| ours: {label} | {v['median_s']} | {q} | | |")
    for label, p in report.get("peers", {}).items():
        if "error" in p:
            rows.append(f"| {label} | failed: {str(p['error'])[:120]} | | | |")
            continue
        r = p["ours_over_theirs"]
        rows.append(
            f"| {label} {p.get('version', '')} | {p['index_median_s']} | {p['query_p50_ms']} "
            f"| {r['index (qa index torch)']}, {r['index (qa index onnx-int8)']} "
            f"| {r['query (dense, torch)']}, {r['query (dense, onnx-int8)']} |"
        )
    return rows


def targets(reports: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's targets, each with the measured figure and met / missed."""
    out = ["| target | measured | |", "| --- | --- | --- |"]
    idx = reports.get("indexing")
    if idx:
        for c in idx["corpora"]:
            t = c["backends"].get("torch")
            q = c["backends"].get("onnx-int8")
            if t:
                ok = t["efficiency"] >= TARGETS["indexing_efficiency"]
                out.append(
                    f"| indexing {c['corpus']}: pipeline >= 0.9 x raw (torch) | {t['efficiency']} | {_mark(ok)} |"
                )
            if q and q.get("speedup_vs_torch_raw") is not None:
                ok = q["speedup_vs_torch_raw"] >= TARGETS["indexing_int8_speedup"]
                out.append(
                    f"| indexing {c['corpus']}: int8 pipeline >= 1.5 x torch raw | {q['speedup_vs_torch_raw']} | {_mark(ok)} |"
                )
    lat = reports.get("latency")
    if lat:
        for b, r in lat.get("backends", {}).items():
            seq = r.get("sequential", {}).get("latency_ms", {})
            rps = r.get("concurrent", {}).get("throughput_rps")
            if seq:
                out.append(f"| /ask p50 <= 50 ms ({b}) | {seq['p50']} | {_mark(seq['p50'] <= TARGETS['ask_p50_ms'])} |")
                out.append(
                    f"| /ask p95 <= 120 ms ({b}) | {seq['p95']} | {_mark(seq['p95'] <= TARGETS['ask_p95_ms'])} |"
                )
            if rps is not None:
                out.append(f"| >= 30 req/s, 8 clients ({b}) | {rps} | {_mark(rps >= TARGETS['ask_rps_8_clients'])} |")
    sc = reports.get("scale")
    if sc:
        bigs = [r for n, r in sc.get("synthetic", {}).items() if n.split()[0] == "1000000"]
        if bigs:
            best = None
            for kind, k in ((kind, k) for big in bigs for kind, k in big["kinds"].items()):
                b = k.get("at_recall_target")
                if b and k["memory_mib"] <= TARGETS["scale_1m_mib"]:
                    cand = (b["single_query_ms"]["p50"], kind, b["recall_at_10"], k["memory_mib"])
                    best = min(best, cand) if best else cand
            if best:
                ok = best[0] <= TARGETS["scale_1m_p50_ms"]
                out.append(
                    f"| 1M vectors: p50 <= 5 ms at recall@10 >= 0.95 in <= 1 GiB | {best[1]}: {best[0]} ms, "
                    f"recall {best[2]}, {best[3]} MiB | {_mark(ok)} |"
                )
            else:
                out.append(
                    "| 1M vectors: p50 <= 5 ms at recall@10 >= 0.95 in <= 1 GiB | no kind within budget | missed |"
                )
    pe = reports.get("peers")
    if pe:
        for label, p in pe.get("peers", {}).items():
            if "error" in p:
                continue
            r = p["ours_over_theirs"]
            index, query = r["index (qa index onnx-int8)"], r["query (dense, onnx-int8)"]  # the default backend
            out.append(
                f"| faster than {label} (index, query; default onnx-int8) | {index}, {query} "
                f"| {_mark(index < 1 and query < 1)} |"
            )
    return out


def quality_rows(report: dict[str, Any]) -> list[str]:
    rows = [
        "| gold set | backend | EM | F1 | recall@5 | MRR@10 | nDCG@10 | max delta vs torch (points) | within 0.5 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, g in report.get("gold", {}).items():
        for b, r in g["backends"].items():
            f = r["figures"]
            delta = r.get("delta_points_vs_torch")
            worst = (
                max((abs(v) for k, v in delta.items() if k in report.get("gated", [])), default=0.0) if delta else ""
            )
            rows.append(
                f"| {name} | {b} | {f.get('exact_match')} | {f.get('f1')} | {f.get('recall@5')} | {f.get('mrr@10')} "
                f"| {f.get('ndcg@10')} | {worst} | {_mark(r.get('within_tolerance')) if delta else ''} |"
            )
    return rows


SECTIONS = (
    ("indexing", "Indexing", indexing_rows),
    ("latency", "Question latency (built-in corpus)", latency_rows),
    ("scale", "Dense retrieval at scale", scale_rows),
    ("peers", "Peers on the same work", peers_rows),
    ("quality", "Quality per embedding backend", quality_rows),
)


def summarise(report: dict[str, Any]) -> str:
    kind = report.get("benchmark", "")
    for key, title, rows in SECTIONS:
        if key == kind:
            return "\n".join([f"## {title}", "", *rows(report), "", _load_line(report)])
    return json.dumps(report, indent=2)[:2000]


def markdown_report(folder: Path) -> str:
    reports: dict[str, dict[str, Any]] = {}
    for key, *_ in SECTIONS:
        path = Path(folder) / f"{key}.json"
        if path.is_file():
            reports[key] = json.loads(path.read_text(encoding="utf-8"))
    if "indexing" in reports:
        for extra in sorted(Path(folder).glob("indexing-*.json")):
            more = json.loads(extra.read_text(encoding="utf-8"))
            for c in more.get("corpora", []):
                reports["indexing"]["corpora"].append({**c, "corpus": f"{c['corpus']} ({extra.stem})"})
    if "scale" in reports:
        # Further runs of single sizes (`--out var/bench/scale-1m.json`, say) join the scale table.
        for extra in sorted(Path(folder).glob("scale-*.json")):
            more = json.loads(extra.read_text(encoding="utf-8"))
            for n, res in more.get("synthetic", {}).items():
                reports["scale"]["synthetic"][f"{n} ({extra.stem})"] = res
    if not reports:
        return f"no benchmark JSON in {folder}: run `qa bench indexing|latency|scale|peers` first"
    parts = ["## Targets", "", *targets(reports), ""]
    for key, title, rows in SECTIONS:
        if key in reports:
            r = reports[key]
            parts += [f"## {title}", "", f"`{r.get('command')}`; {_load_line(r)}", "", *rows(r), ""]
    return "\n".join(parts).rstrip()
