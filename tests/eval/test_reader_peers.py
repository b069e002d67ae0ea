"""`qa bench reader-peers`: the parts that need neither Haystack nor a model (answer normalisation, agreement
counting, the latency arithmetic, the table), on hand-made per-question results. The measurement itself runs
against var/peers/haystack and is never part of the suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from eval.bench.reader_peers import (
    Outcome,
    agreement,
    check_model_folder,
    compare,
    format_table,
    latency_summary,
    normalise,
)


def test_normalise_collapses_whitespace_only() -> None:
    assert normalise("  16.43\n months ") == "16.43 months"
    assert normalise("300 mg,\tone dose") == "300 mg, one dose"
    assert normalise("Sorafenib") != normalise("sorafenib")  # case and punctuation are kept
    assert normalise(None) is None


def _o(qid: str, text: str | None, abstained: bool = False, ms: float = 10.0) -> Outcome:
    return Outcome(qid, ms, text, None if text is None else 0.9, abstained)


def test_agreement_counts_text_and_abstention_separately() -> None:
    ours = [
        _o("q1", "16.43 months"),  # same text, both answer
        _o("q2", "300 mg"),  # different text
        _o("q3", "rapid", abstained=True),  # both abstain, different best spans
        _o("q4", "1171", abstained=True),  # only ours abstains, same span
        _o("q5", None, abstained=True),  # no span at all on either side
        _o("q6", "unmatched"),  # Haystack has no result for it: not counted
    ]
    theirs = [
        _o("q1", "16.43\nmonths"),
        _o("q2", "300 mg, one dose"),
        _o("q3", "slowly", abstained=True),
        _o("q4", "1171"),
        _o("q5", None, abstained=True),
    ]
    ag = agreement(ours, theirs)
    assert ag["n"] == 5
    assert ag["same_answer"] == 3  # q1, q3, q5
    assert ag["same_best_span"] == 3  # q1, q4, q5
    assert ag["same_abstention"] == 4  # all but q4
    assert (ag["both_answered"], ag["both_answered_same_text"]) == (2, 1)
    assert (ag["ours_abstained"], ag["haystack_abstained"]) == (3, 2)
    assert [d["id"] for d in ag["disagreements"]] == ["q2", "q4"]
    q4 = ag["disagreements"][1]
    assert q4["ours"] is None and q4["ours_best_span"] == "1171" and q4["haystack"] == "1171"
    assert len(agreement(ours, theirs, keep=1)["disagreements"]) == 1


def test_latency_summary_percentiles_and_ratio() -> None:
    ours = [float(x) for x in range(1, 101)]  # p50 50.5, p95 95.05
    theirs = [2 * x for x in ours]
    s = latency_summary(ours, theirs)
    assert s["ours_ms"]["p50"] == pytest.approx(50.5)
    assert s["haystack_ms"]["p50"] == pytest.approx(101.0)
    assert s["ours_over_theirs"] == {"p50": 0.5, "p95": 0.5}
    assert latency_summary([], [1.0])["ours_over_theirs"] == {"p50": None, "p95": None}


def test_compare_and_table() -> None:
    ours = [_o("q1", "a", ms=10.0), _o("q2", "b", ms=30.0)]
    theirs = [_o("q1", "a", ms=40.0), _o("q2", "c", ms=60.0)]
    row = compare(2, ours, theirs)
    assert row["threads"] == 2
    assert row["ours_over_theirs"]["p50"] == pytest.approx(20.0 / 50.0)
    assert row["agreement"]["same_answer"] == 1
    table = format_table([row, {"threads": 1, "ours_ms": row["ours_ms"], "error": "no environment var/peers"}])
    lines = table.splitlines()
    assert len(lines) == 4 and lines[1].startswith("|---")
    assert "| 2 | 20.0 / 29.0 | 50.0 / 59.0 | 0.4 / " in lines[2] and "| 1/2 | 1/2 |" in lines[2]
    assert "no environment" in lines[3]


def test_outcome_reads_the_haystack_script_json() -> None:
    o = Outcome.from_json(
        {"id": "dev-001", "ms": 12.5, "text": "16.43 months", "score": 0.7, "abstained": False, "passages": 9}
    )
    assert o == Outcome("dev-001", 12.5, "16.43 months", 0.7, False)
    assert Outcome.from_json(o.to_json()) == o


def test_a_missing_model_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_model_folder(tmp_path / "absent")
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileNotFoundError):
        check_model_folder(tmp_path)  # no weights
    (tmp_path / "model.safetensors").write_bytes(b"")
    check_model_folder(tmp_path)
    args = ["bench", "reader-peers", "--model", str(tmp_path / "absent")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 2
    assert "not a model folder" in result.output
