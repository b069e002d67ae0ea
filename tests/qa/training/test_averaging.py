"""Averaging readers: the written weights are the mean of the sources', checkpoints and folders mix, the result
loads and answers verbatim, its report and model card say what was averaged, and mismatched sources are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.documents import Chunk, Document
from index.passages import RetrievedPassage
from qa.readers.transformers_reader import TransformersReader
from qa.training.averaging import average_readers, average_weights, load_source
from qa.training.data import load_squad
from qa.training.model_card import render
from qa.training.trainer import TrainingError, save_checkpoint
from tests.qa.tiny_bert import minilm_tokenizer, tiny_bert_config
from tests.qa.training.test_trainer import FACTS, squad_file


def tiny_reader(folder: Path, seed: int, hidden: int = 32) -> Path:
    """A randomly initialised 2-layer BERT with a QA head and the bundled MiniLM tokenizer."""
    import torch
    from transformers import BertForQuestionAnswering

    tokenizer = minilm_tokenizer()
    torch.manual_seed(seed)
    BertForQuestionAnswering(tiny_bert_config(tokenizer.vocab_size, hidden)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two reader folders (the first with a training report) and a run checkpoint holding a third model."""
    root = tmp_path_factory.mktemp("averaging")
    first, second = tiny_reader(root / "run-a", 1), tiny_reader(root / "run-b", 2)
    (first / "training.json").write_text(
        json.dumps(
            {
                "best_step": 40,
                "data": {"dev": [{"path": "tiny-dev.json"}]},
                "evaluation": {"max_length": 64, "stride": 16, "max_answer_tokens": 10, "precision": "fp32"},
                "final_dev": {"step": 40},
            }
        )
    )
    third = load_source(tiny_reader(root / "run-c", 3))[0]
    checkpoint = root / "run-c" / "checkpoint" / "state.pt"
    save_checkpoint(checkpoint, {"model": third, "step": 60, "optimizer": {}})
    return first, second, checkpoint


@pytest.mark.model
def test_the_average_is_the_mean_loads_and_answers_verbatim(sources, tmp_path) -> None:
    first, second, checkpoint = sources
    dev = squad_file(tmp_path / "tiny-dev.json", 1)
    out = tmp_path / "averaged"
    report = average_readers([first, second, checkpoint], out, [dev])

    weights = [load_source(s)[0] for s in (first, second, checkpoint)]
    averaged = load_source(out)[0]
    for name, tensor in averaged.items():
        expected = (weights[0][name] + weights[1][name] + weights[2][name]) / 3
        assert (tensor - expected).abs().max().item() < 1e-6, name
    assert not all((averaged[n] == weights[0][n]).all() for n in averaged)  # not a copy of the first

    kinds = [(s["kind"], s["step"]) for s in report["weight_average"]["sources"]]
    assert kinds == [("dev-best weights", 40), ("dev-best weights", None), ("last step of its run", 60)]
    assert len({s["sha256"] for s in report["weight_average"]["sources"]}) == 3
    assert report["final_dev"]["averaged"] and report["final_dev"]["tiny-dev.json"]["questions"] == 8
    assert json.loads((out / "training.json").read_text()) == report

    reader = TransformersReader(str(out), max_answer_tokens=10, max_length=64, stride=16)
    reader.warm_up()
    doc = Document(id="d", text=load_squad(dev)[0].context)
    passage = RetrievedPassage(chunk=Chunk.from_document(doc, 0, len(doc.text), 0), score=1.0, rank=1)
    answers = reader.run(FACTS[0][0], [passage], {"d": doc}, max_answers=3)
    assert answers and all(doc.text[a.start : a.end] == a.text for a in answers)


def test_the_model_card_says_what_was_averaged() -> None:
    from qa.settings import PACKAGE_DIR

    training = json.loads((PACKAGE_DIR / "data" / "reader" / "training.json").read_text(encoding="utf-8"))
    training["weight_average"] = {
        "rule": "uniform",
        "sources": [
            {"source": "var/reader-stage8", "kind": "dev-best weights", "step": 600, "sha256": "a" * 16},
            {
                "source": "var/reader-stage8/checkpoint/state.pt",
                "kind": "last step of its run",
                "step": 1200,
                "sha256": "b" * 16,
            },
        ],
    }
    training["final_dev"] = {**training["final_dev"], "step": None, "averaged": True}
    card = render(training, None)
    assert "uniform average of 2 checkpoints" in card
    assert "qa average-readers \\\n    var/reader-stage8 \\\n    var/reader-stage8/checkpoint/state.pt" in card
    assert "Kept: the average above." in card and "Kept: step" not in card


@pytest.mark.model
def test_a_sibling_run_s_report_goes_with_the_average(sources, tmp_path) -> None:
    first, _, _ = sources
    report = json.loads((first / "training.json").read_text())
    sibling = tiny_reader(tmp_path / "sibling", 5)
    copy = tiny_reader(tmp_path / "copy", 6)
    (sibling / "training.json").write_text(json.dumps({**report, "hyperparameters": {"seed": 7}, "best_step": 9}))
    (copy / "training.json").write_text(json.dumps(report))  # the first run's report: nothing new to say
    averaged = average_readers([first, sibling, copy], tmp_path / "out")["weight_average"]["sources"]
    assert "run" not in averaged[0] and "run" not in averaged[2]
    assert averaged[1]["run"]["hyperparameters"] == {"seed": 7} and averaged[1]["step"] == 9


def test_the_model_card_gives_a_sibling_run_s_command() -> None:
    from qa.settings import PACKAGE_DIR

    training = json.loads((PACKAGE_DIR / "data" / "reader" / "training.json").read_text(encoding="utf-8"))
    training.pop("weight_average", None)
    sibling = json.loads(json.dumps({k: v for k, v in training.items() if k != "base_training"}))
    sibling["hyperparameters"] |= {"seed": 7, "hard_negative_share": 0.5}
    training["weight_average"] = {
        "rule": "uniform",
        "sources": [
            {"source": "var/reader-a", "kind": "dev-best weights", "step": 138, "sha256": "a" * 16},
            {"source": "var/reader-b", "kind": "dev-best weights", "step": 276, "sha256": "b" * 16, "run": sibling},
        ],
    }
    card = render(training, None)
    own = card.index("`var/reader-b` came from its own run")
    assert "seed 7" in card[own : own + 200]
    assert "--hard-negatives 0.5" in card[own:] and "--output var/reader-b" in card[own:]
    assert card.count("--hard-negatives") == 1  # the first source's run drew its negatives at random


@pytest.mark.model
def test_mismatched_or_unusable_sources_are_refused_by_name(sources, tmp_path) -> None:
    first, _, checkpoint = sources
    wider = tiny_reader(tmp_path / "wider", 4, hidden=48)
    with pytest.raises(TrainingError, match=r"wider.*shape"):
        average_readers([first, wider], tmp_path / "out")
    with pytest.raises(TrainingError, match="at least one reader folder"):
        average_readers([checkpoint], tmp_path / "out")
    with pytest.raises(TrainingError, match="is one of the sources"):
        average_readers([first, checkpoint], first)
    with pytest.raises(TrainingError, match="neither a reader folder"):
        average_readers([first, tmp_path / "missing"], tmp_path / "out")
    with pytest.raises(TrainingError, match="nothing to average"):
        average_weights([], [])
    assert not (tmp_path / "out").exists()  # refused before anything is written


@pytest.mark.model
def test_the_command_writes_the_average_or_says_what_is_wrong(sources, tmp_path) -> None:
    from typer.testing import CliRunner

    from cli import app

    first, second, _ = sources
    runner = CliRunner()
    result = runner.invoke(app, ["average-readers", str(first), str(second), "--output", str(tmp_path / "avg")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"output": str(tmp_path / "avg"), "final_dev": None}
    assert (tmp_path / "avg" / "model.safetensors").is_file()
    bad = runner.invoke(app, ["average-readers", str(first), str(tmp_path / "nope"), "--output", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "neither a reader folder" in bad.output
