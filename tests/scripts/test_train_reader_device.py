"""The device training script's packaging: the kept reader comes back whole through files the tool returns."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_reader_device", ROOT / "scripts" / "train_reader_device.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_weights_come_back_in_parts_the_tool_returns_and_join_whole(script, tmp_path, monkeypatch) -> None:
    assert script.PART_BYTES <= 16 * 2**20  # the tool's limit on one returned file
    monkeypatch.setattr(script, "PART_BYTES", 1000)
    name = next(iter(script.VARIANTS))  # a variant the run knows: its log and report travel in the bundle
    ship, work, out = tmp_path / "ship", tmp_path / "work", tmp_path / "out"
    for d in (ship, work / name, out):
        d.mkdir(parents=True)
    weights = os.urandom(2500)
    (ship / "model.safetensors").write_bytes(weights)
    (ship / "config.json").write_text('{"model_type": "bert"}')
    (ship / "training.json").write_text('{"final_dev": null}')
    (work / name / "training.json").write_text('{"evals": []}')
    (work / f"{name}.log").write_text("step 1\n")

    script._write_out(ship, work, out, {"kept": name})
    files = sorted(p.name for p in out.iterdir())
    assert files == ["bundle.tar.gz", *(f"model.safetensors.part-{i}" for i in range(3)), "summary.json"]
    assert all((out / f).stat().st_size <= 1000 for f in files if f.startswith("model"))
    assert json.loads((out / "summary.json").read_text()) == {"kept": name}

    into = tmp_path / "reader"
    script.unpack_result(out, into)
    assert (into / "model.safetensors").read_bytes() == weights
    assert json.loads((into / "config.json").read_text()) == {"model_type": "bert"}
    assert (into / "bundle" / "variants" / name / f"{name}.log").read_text() == "step 1\n"


def test_a_variant_competes_with_its_dev_best_and_only_with_weights(script, tmp_path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    assert script._best(folder) is None  # stopped before any report
    report = {
        "evals": [{"step": 2, "mean_f1": 0.5}, {"step": 4, "mean_f1": 0.7}, {"step": 6, "mean_f1": 0.6}],
        "best_step": 4,
        "steps": {"done": 6},
        "speed": {"windows_per_s": 1.0},
    }
    (folder / "training.json").write_text(json.dumps(report))
    assert script._best(folder) is None  # a report but no weights saved
    (folder / "model.safetensors").write_bytes(b"x")
    best = script._best(folder)
    assert best["step"] == 4 and best["mean_f1"] == 0.7 and best["best_step"] == 4
