"""The top_k study: rows by depth from calibration summaries, refused when they differ in more than top_k."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval import results_doc
from eval.bench import top_k


def summary(k: int, mean: float, wrong: tuple[int, int], **meta) -> dict:
    sets = {
        "seed_dev.jsonl:retrieved": {"f1": mean + 0.01, "wrong": wrong[0]},
        "dev-v2.0.json:oracle": {"f1": mean - 0.01, "wrong": wrong[1]},
    }
    best = {"mean_f1": mean, "threshold": 0.35, "retrieval_weight": 0.3, "coverage_exponent": 4.0, "sets": sets}
    base = {"reader": "transformers", "reader_model": "qa/data/reader", "limit": 300, "seed": 0, "top_k": k}
    return {**base, **meta, "best": best, "read_ms_per_question": {"seed_dev.jsonl:retrieved": 30.0 * k}}


def test_rows_are_sorted_by_top_k_with_their_own_setting_and_wrong_answers() -> None:
    rows = top_k.collect([summary(5, 0.70, (5, 90)), summary(3, 0.71, (3, 96))])
    assert [r["top_k"] for r in rows] == [3, 5]
    assert rows[0]["wrong"] == 99 and rows[1]["wrong"] == 95
    assert rows[0]["sets"]["seed_dev.jsonl:retrieved"] == {"f1": pytest.approx(0.72), "wrong": 3}
    assert rows[0]["read_ms_per_question"]["seed_dev.jsonl:retrieved"] == 90.0


def test_summaries_that_differ_in_more_than_top_k_are_refused() -> None:
    with pytest.raises(ValueError, match="reader_model"):
        top_k.collect([summary(3, 0.7, (1, 1)), summary(5, 0.7, (1, 1), reader_model="var/other")])
    with pytest.raises(ValueError, match="limit"):
        top_k.collect([summary(3, 0.7, (1, 1)), summary(5, 0.7, (1, 1), limit=100)])
    with pytest.raises(ValueError, match="same top_k"):
        top_k.collect([summary(3, 0.7, (1, 1)), summary(3, 0.7, (1, 1))])


def test_collected_summaries_become_a_report_and_a_doc_section(tmp_path) -> None:
    paths = []
    for k, mean in ((3, 0.7124), (5, 0.7008)):
        paths.append(tmp_path / f"k{k}.json")
        paths[-1].write_text(json.dumps(summary(k, mean, (k, 90))))
    out = tmp_path / "top-k.json"
    top_k.main(["--from-summaries", *map(str, paths), "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["benchmark"] == "top-k" and [r["top_k"] for r in report["rows"]] == [3, 5]
    section = "\n".join(results_doc.top_k_section(report))
    assert "| 3 | 0.7124 | threshold 0.35, retrieval weight 0.3, coverage exponent 4.0 | 0.722 (3) | 0.702 (90) |" in (
        section
    )
    assert "--from-summaries" in section  # the command that made it


def test_each_top_k_is_calibrated_with_the_same_sets_and_sample(tmp_path, monkeypatch) -> None:
    calls, real_run = [], top_k.subprocess.run

    def fake_run(cmd, **kw):
        if cmd[:2] != ["qa", "calibrate"]:  # the report's own calls (git, for the code version)
            return real_run(cmd, **kw)
        calls.append(cmd)
        k = int(cmd[cmd.index("--top-k") + 1])
        Path(cmd[cmd.index("--summary") + 1]).write_text(json.dumps(summary(k, 0.7 + k / 1000, (k, 90))))

    monkeypatch.setattr(top_k.subprocess, "run", fake_run)
    out = tmp_path / "top-k.json"
    sets = ["--set", "a.jsonl:retrieved", "--set", "b.json:oracle"]
    top_k.main(["--top-k", "5", "3", "--limit", "50", *sets, "--qa", "qa", "--out", str(out)])
    assert [c[c.index("--top-k") + 1] for c in calls] == ["5", "3"]
    for c in calls:
        assert c[:2] == ["qa", "calibrate"] and c[c.index("--limit") + 1] == "50"
        assert [c[i + 1] for i, x in enumerate(c) if x == "--set"] == ["a.jsonl:retrieved", "b.json:oracle"]
    assert [r["top_k"] for r in json.loads(out.read_text())["rows"]] == [3, 5]
    with pytest.raises(SystemExit):  # no sets: refused before any calibration runs
        top_k.main(["--top-k", "3", "--out", str(out)])
