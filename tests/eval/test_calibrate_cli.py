"""`qa calibrate --from-candidates`: the sweep of a saved reading, and the checks around it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from eval.calibrate_cli import DEFAULT_THRESHOLDS, DEFAULT_WEIGHTS
from eval.calibration import QuestionCandidates, best, sweep, weights_digest, write_candidates
from qa.answers import make_answer

runner = CliRunner()
TEXT = "The median overall survival was 16.4 months. Grade 3 events were seen in 25.8% of patients."


def cand(span: str, p: float, doc: str = "d"):
    start = TEXT.index(span)
    return make_answer("q", TEXT, doc, f"{doc}#0", 0, len(TEXT), start, start + len(span), "transformers", p)


def saved(tmp_path: Path, model: Path) -> tuple[Path, dict]:
    sets = {
        "a:retrieved": [
            QuestionCandidates("1", ("16.4 months",), [cand("16.4 months", 0.7), cand("25.8%", 0.2)], {"d": 1}),
            QuestionCandidates("2", ("25.8%",), [cand("16.4 months", 0.4, "e"), cand("25.8%", 0.3)], {"d": 1, "e": 2}),
        ],
        "a:without-gold": [QuestionCandidates("3", (), [cand("25.8%", 0.25, "e")], {"e": 1})],
    }
    meta = {
        "reader": "transformers",
        "combined": False,
        "reader_model": str(model),
        "weights_digest": weights_digest(model),
        "top_k": 5,
        "expand_documents": 0,
        "max_answers": 3,
        "reader_precision": "bf16",
        "limit": 300,
        "seed": 0,
        "timing": {"a:retrieved": 120.0},
    }
    path = tmp_path / "candidates.json.gz"
    write_candidates(path, sets, meta)
    return path, sets


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def test_from_candidates_sweeps_without_reading_and_writes_the_calibration(tmp_path: Path) -> None:
    model = tmp_path / "reader"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    path, sets = saved(tmp_path, model)
    out = tmp_path / "report.json"
    result = runner.invoke(
        app, ["calibrate", "--from-candidates", str(path), "--out", str(out), "--write-calibration", str(model)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    expected = best(sweep(sets, floats(DEFAULT_WEIGHTS), floats(DEFAULT_THRESHOLDS), coverage_exponents=(0.0,)))
    assert (
        report["best"]["mean_f1"] == expected["mean_f1"] == 1.0
    )  # retrieval rank puts 2's gold first; 3 is abstained on
    assert (report["reader_model"], report["reader_precision"], report["limit"]) == (str(model), "bf16", 300)
    calibration = json.loads((model / "calibration.json").read_text())
    assert calibration["min_answer_score"] == report["best_reader_alone"]["threshold"]
    assert calibration["reader_precision"] == "bf16" and calibration["top_k"] == 5


def test_from_candidates_refuses_other_weights_and_sets_beside_it(tmp_path: Path) -> None:
    model = tmp_path / "reader"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    path, _ = saved(tmp_path, model)
    (model / "model.safetensors").write_bytes(b"retrained weights")
    out = tmp_path / "report.json"
    result = runner.invoke(
        app, ["calibrate", "--from-candidates", str(path), "--out", str(out), "--write-calibration", str(model)]
    )
    assert result.exit_code == 2 and "other weights" in result.output
    assert not (model / "calibration.json").exists()
    both = ["calibrate", "--from-candidates", str(path), "--set", "gold.jsonl:retrieved", "--out", str(out)]
    result = runner.invoke(app, both)
    assert result.exit_code == 2 and "one of the two" in result.output
    result = runner.invoke(app, ["calibrate", "--out", str(out)])
    assert result.exit_code == 2 and "one of the two" in result.output
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    result = runner.invoke(app, ["calibrate", "--from-candidates", str(tmp_path / "bad.gz"), "--out", str(out)])
    assert result.exit_code == 2 and "bad.gz" in result.output
    assert not out.exists()


def test_the_best_mix_is_written_for_the_combined_reader_even_when_the_reader_alone_wins(tmp_path: Path) -> None:
    """`--reader combined` runs calibration.json's "combined" setting: it must be the mix the report (and the
    README) gives as best_combined, not left out because the trained reader alone scored higher."""
    model = tmp_path / "reader"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")

    def heur(span: str, p: float, doc: str = "d"):
        start = TEXT.index(span)
        return make_answer("q", TEXT, doc, f"{doc}#0", 0, len(TEXT), start, start + len(span), "heuristic", p)

    sets = {
        "a:retrieved": [
            QuestionCandidates("1", ("16.4 months",), [cand("16.4 months", 0.7)], {"d": 1}, [heur("25.8%", 0.9)], 12),
            QuestionCandidates("2", ("25.8%",), [cand("25.8%", 0.6)], {"d": 1}, [heur("25.8%", 0.8)], 12),
        ],
    }
    meta = {
        "reader": "combined",
        "combined": True,
        "reader_model": str(model),
        "weights_digest": weights_digest(model),
        "top_k": 3,
        "expand_documents": 0,
        "max_answers": 3,
        "reader_precision": "bf16",
        "limit": 300,
        "seed": 0,
        "timing": {},
    }
    path = tmp_path / "candidates.json.gz"
    write_candidates(path, sets, meta)
    out = tmp_path / "report.json"
    result = runner.invoke(
        app, ["calibrate", "--from-candidates", str(path), "--out", str(out), "--write-calibration", str(model)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["best"]["heuristic_weight"] is None  # the trained reader alone answers both
    mix = report["best_combined"]
    assert mix is not None and mix["heuristic_weight"] is not None
    written = json.loads((model / "calibration.json").read_text())["combined"]
    assert written["heuristic_weight"] == mix["heuristic_weight"]
    assert (written["min_answer_score"], written["retrieval_weight"]) == (mix["threshold"], mix["retrieval_weight"])
    assert written["mean_f1"] == mix["mean_f1"] <= report["best"]["mean_f1"]
