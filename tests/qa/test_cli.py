"""The `qa` command in-process (typer's runner), on the session's demo index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app

pytestmark = pytest.mark.model
runner = CliRunner()


@pytest.fixture(autouse=True)
def torch_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's demo index is a torch index (the session's loaded model built it); a flag still overrides."""
    monkeypatch.setenv("QA_EMBEDDING_BACKEND", "torch")


def test_ask_json_is_stable_and_cites_exact_offsets(demo_pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_INDEX_DIR", str(demo_pipeline.settings.index_dir))
    result = runner.invoke(app, ["ask", "What was the median overall survival with STRIDE?", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"question", "no_answer", "answers", "passages", "took_ms"}
    best = payload["answers"][0]
    assert best["text"] == "16.43 months" and best["doc_id"] == "abs-02"
    text = demo_pipeline.index.documents["abs-02"].text
    assert text[best["start"] : best["end"]] == "16.43 months"
    sp = best["span_in_passage"]
    assert best["passage"]["text"][sp["start"] : sp["end"]] == "16.43 months"


def test_ask_human_output_and_no_answer(demo_pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_INDEX_DIR", str(demo_pipeline.settings.index_dir))
    result = runner.invoke(app, ["ask", "What was the median overall survival with STRIDE?"])
    assert result.exit_code == 0
    assert "16.43 months" in result.stdout and "abs-02" in result.stdout
    none = runner.invoke(app, ["ask", "Which vaccine prevents measles?"])
    assert none.exit_code == 0 and "No answer found" in none.stdout


def test_bad_input_exits_nonzero_with_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "idx"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "ok"}\n{"id": "a", "text": "dup"}\n', encoding="utf-8")
    result = runner.invoke(app, ["index", "--corpus", str(bad)])
    assert result.exit_code == 2
    assert "duplicate id 'a'" in result.output
    result = runner.invoke(app, ["ask", "x", "--retriever", "semantic"])
    assert result.exit_code == 2 and "semantic" in result.output


def test_index_command_builds_a_user_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "mine.jsonl"
    corpus.write_text(
        '{"id": "x1", "text": "The trial enrolled 240 patients. Median survival was 9.1 months."}\n'
        '{"id": "x2", "text": "A different study of 12 mice."}\nnot json\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "idx"))
    result = runner.invoke(app, ["index", "--corpus", str(corpus), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert "indexed 2 documents (1 skipped)" in result.stdout
    asked = runner.invoke(app, ["ask", "How many patients did the trial enrol?", "--json"])
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.stdout)["answers"][0]["text"] == "240"


def test_ask_with_another_backend_than_the_index_says_which_built_it(
    demo_pipeline, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_INDEX_DIR", str(demo_pipeline.settings.index_dir))
    monkeypatch.setenv("QA_ONNX_CACHE_DIR", str(onnx_cache))
    result = runner.invoke(app, ["ask", "What is sorafenib?", "--embedding-backend", "onnx-int8"])
    assert result.exit_code == 2
    out = " ".join(result.output.split())  # rich wraps long lines
    assert "built by the torch (or onnx) embedding backend" in out and "QA_EMBEDDING_BACKEND=torch" in out
    bad = runner.invoke(app, ["ask", "What is sorafenib?", "--embedding-backend", "tensorrt"])
    assert bad.exit_code == 2 and "onnx-int8" in bad.output
