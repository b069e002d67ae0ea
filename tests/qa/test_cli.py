"""The `qa` command in-process (typer's runner), on the session's demo index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from common.progress import QUIET_ENV

pytestmark = pytest.mark.model
runner = CliRunner()


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands as a user runs them: no QA_* variable from the developer's shell."""
    import os

    for name in [n for n in os.environ if n.startswith("QA_")]:
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def progress_bars_restored(monkeypatch: pytest.MonkeyPatch):
    """`qa ask` switches the libraries' progress bars off for its process: here that is the test session, so the
    switches are put back afterwards (the environment by monkeypatch, the imported libraries' by their calls)."""
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    for name in QUIET_ENV:
        monkeypatch.setenv(name, os.environ.get(name, ""))  # recorded as it was, restored after the test
        if not os.environ[name]:
            monkeypatch.delenv(name)
    hub_on, transformers_on = not are_progress_bars_disabled(), transformers_logging.is_progress_bar_enabled()
    yield
    if hub_on:
        enable_progress_bars()
    if transformers_on:
        transformers_logging.enable_progress_bar()


def test_ask_json_is_stable_and_cites_exact_offsets(demo_pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_INDEX_DIR", str(demo_pipeline.settings.index_dir))
    result = runner.invoke(app, ["ask", "What was the median overall survival with STRIDE?", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {
        "question",
        "no_answer",
        "answers",
        "passages",
        "took_ms",
        "index_fingerprint",
        "partial",
        "missing_shards",
    }
    assert payload["index_fingerprint"] == demo_pipeline.index.manifest.fingerprint
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


def test_ask_in_a_fresh_process_prints_the_answer_and_no_progress_bar(demo_pipeline) -> None:
    """As a user runs it: the answer is the whole output, with no "Loading weights" bar drawn before it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_") and k not in QUIET_ENV}
    env.update(QA_INDEX_DIR=str(demo_pipeline.settings.index_dir), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    question = "What was the median overall survival with STRIDE?"
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "ask", question],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert "16.43 months" in proc.stdout and "abs-02" in proc.stdout
    assert "Loading weights" not in proc.stderr + proc.stdout and "it/s" not in proc.stderr, proc.stderr


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
    demo_pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_INDEX_DIR", str(demo_pipeline.settings.index_dir))
    result = runner.invoke(app, ["ask", "What is sorafenib?", "--embedding-backend", "torch"])
    assert result.exit_code == 2
    out = " ".join(result.output.split())  # rich wraps long lines
    assert "built by the onnx-int8 embedding backend" in out and "QA_EMBEDDING_BACKEND=onnx-int8" in out
    bad = runner.invoke(app, ["ask", "What is sorafenib?", "--embedding-backend", "tensorrt"])
    assert bad.exit_code == 2 and "onnx-int8" in bad.output


def refuse_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any embedder load fails the test: the index-directory check must come before the models."""
    from index.embedder import Embedder

    def no_load(self: Embedder, say: object = None) -> None:
        raise AssertionError("a model was loaded before the index directory was checked")

    monkeypatch.setattr(Embedder, "warm_up", no_load)


@pytest.mark.parametrize("exists", [False, True])
def test_ask_with_an_index_dir_holding_no_index_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exists: bool
) -> None:
    """A mistyped --index-dir used to get a demo index of its own, silently; now it is named, with the fix."""
    monkeypatch.setenv("QA_READER", "heuristic")
    refuse_model_loads(monkeypatch)
    typo = tmp_path / "idnex"
    if exists:
        typo.mkdir()
    result = runner.invoke(app, ["ask", "What is sorafenib?", "--index-dir", str(typo)])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())  # rich wraps long lines
    assert f"the index directory {typo} {'holds no index' if exists else 'does not exist'}" in out
    assert f"qa index --index-dir {typo} [--corpus PATH]" in out
    assert typo.is_dir() is exists and (not exists or not any(typo.iterdir()))  # nothing created or built


def test_ask_builds_the_default_index_dir_on_first_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's first run stays: var/index (however spelled) is built from the built-in corpus."""
    monkeypatch.setenv("QA_READER", "heuristic")
    monkeypatch.delenv("QA_INDEX_DIR", raising=False)
    monkeypatch.delenv("QA_CORPUS_PATH", raising=False)
    monkeypatch.chdir(tmp_path)  # var/index is relative to the working directory
    result = runner.invoke(app, ["ask", "What was the median overall survival with STRIDE?", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answers"][0]["text"] == "16.43 months"
    assert (tmp_path / "var" / "index" / "CURRENT").is_file()
    from qa.pipeline import is_default_index_dir

    assert is_default_index_dir("./var/../var/index") and is_default_index_dir(tmp_path / "var" / "index")
    assert not is_default_index_dir("var/index2")
