"""`eval.bench.windows`: the batched window builder timed against one tokenizer call per question, on a tiny
SQuAD file; the benchmark refuses to report when the two builders' windows differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.bench import windows

WORDS = "sorafenib lenvatinib survival months hazard ratio placebo trial patients dose".split()
CONTEXT = " ".join(f"{w}{i}" for i, w in enumerate(WORDS * 60))  # long enough for several 256-token windows


def squad_file(tmp_path: Path) -> Path:
    answer = "hazard4"
    questions = [
        {"id": "q1", "question": "Which ratio?", "answers": [{"text": answer, "answer_start": CONTEXT.index(answer)}]},
        {
            "id": "q2",
            "question": "What came last?",
            "answers": [{"text": CONTEXT[-6:], "answer_start": len(CONTEXT) - 6}],
        },
        {"id": "q3", "question": "Who knows?", "is_impossible": True, "answers": []},
    ]
    data = {"data": [{"title": "t", "paragraphs": [{"context": CONTEXT, "qas": questions}]}]}
    path = tmp_path / "tiny-squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_benchmark_builds_every_question_and_matches_the_per_question_builder(tmp_path: Path) -> None:
    out = tmp_path / "windows.json"
    windows.main([str(squad_file(tmp_path)), "--reference-questions", "2", "--out", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))
    batched, reference = report["batched"], report["reference"]
    assert report["benchmark"] == "windows" and report["max_length"] == 256 and report["stride"] == 64
    assert batched["questions"] == 3 and batched["windows_cut"] >= 3 * 3  # every question gets several windows
    assert batched["windows_kept"] < batched["windows_cut"]  # the training default drops most answer-less ones
    assert reference["questions"] == 2 and reference["windows"] == reference["batched_windows"] >= 6
    assert reference["same_windows"] == reference["windows"]
    assert report["command"].startswith("python -m eval.bench.windows ")


def test_the_benchmark_fails_when_the_builders_disagree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = windows.reference_features
    monkeypatch.setattr(windows, "reference_features", lambda *a: real(*a)[1:])  # one window fewer
    with pytest.raises(SystemExit, match="differ"):
        windows.main([str(squad_file(tmp_path)), "--reference-questions", "2"])
