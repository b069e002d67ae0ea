"""The model card is generated from the shipped folder's training.json: a model trained in two runs shows both
commands, the second continuing from the first's output."""

from __future__ import annotations

import copy
import json

from qa.settings import PACKAGE_DIR
from qa.training.model_card import render, training_stages

SHIPPED = PACKAGE_DIR / "data" / "reader"


def shipped_training() -> dict:
    return json.loads((SHIPPED / "training.json").read_text(encoding="utf-8"))


def test_the_shipped_card_is_the_one_its_files_generate() -> None:
    calibration = json.loads((SHIPPED / "calibration.json").read_text(encoding="utf-8"))
    assert (SHIPPED / "MODEL_CARD.md").read_text(encoding="utf-8") == render(shipped_training(), calibration)


def test_a_continued_run_lists_every_stage_with_its_command() -> None:
    first = shipped_training()
    first.pop("base_training", None)
    first.pop("weight_average", None)  # the shipped average's sibling run has a command of its own
    second = copy.deepcopy(first)
    second["base_model"], second["base_training"] = "qa/data/reader", first
    second["hyperparameters"]["seed"] = 14
    assert training_stages(second) == [first, second]
    card = render(second, None)
    assert "Trained in 2 runs" in card
    assert "--output var/reader-stage1" in card  # the first run's command ...
    assert "--base-model var/reader-stage1" in card  # ... and the second, continuing from its output
    assert card.count("qa train-reader") == 2
    assert f"**Base model**: `{first['base_model']}`" in card  # the encoder the lineage began from
    assert "this run continued `qa/data/reader`" in card


def test_a_stage_trained_elsewhere_shows_its_hardware_and_notes() -> None:
    first = shipped_training()
    first.pop("base_training", None)
    first["device"], first["notes"] = "NVIDIA H200", ["its windows were cut short"]
    second = copy.deepcopy(first)
    second["base_model"], second["base_training"], second["device"] = "qa/data/reader", first, "cpu"
    second["notes"] = ["re-scored here"]
    card = render(second, None)
    assert f"seed {first['hyperparameters']['seed']}, on NVIDIA H200:" in card
    assert "   Note: its windows were cut short" in card
    assert "\nNote: re-scored here" in card


def test_a_run_with_swapped_questions_says_so_and_its_command_reproduces_them() -> None:
    training = shipped_training()
    training.pop("base_training", None)
    training.pop("weight_average", None)  # one run alone
    training["hyperparameters"]["swap_ratio"] = 0.0
    assert "--swap-ratio" not in render(training, None)  # a run without them: the command as it was
    training["hyperparameters"]["swap_ratio"] = 0.5
    card = render(training, None)
    assert "--swap-ratio 0.5" in card
    assert "swapping a specific word of a question for one its passage never uses" in card


def test_a_run_with_hard_negatives_says_so_and_its_command_reproduces_them() -> None:
    training = shipped_training()
    training.pop("base_training", None)
    training.pop("weight_average", None)  # one run alone
    card = render(training, None)
    assert "--hard-negatives" not in card and "hardest" not in card  # the shipped run drew them at random
    training["hyperparameters"]["hard_negative_share"] = 0.5
    training["windows"]["negative_hard"] = 1346
    card = render(training, None)
    assert "--hard-negatives 0.5" in card
    assert f"{training['windows']['negative_kept']} without, 1346 of them the hardest of their question;" in card


def test_a_calibration_that_charged_for_wrong_answers_says_what_it_chose_on() -> None:
    calibration = json.loads((SHIPPED / "calibration.json").read_text(encoding="utf-8"))
    assert "per wrong answer" not in render(shipped_training(), calibration)  # the shipped one: plain F1
    calibration["wrong_answer_cost"] = 1.0
    assert "best mean F1, less 1.0 per wrong answer, over these dev sets" in render(shipped_training(), calibration)


def test_a_run_with_replayed_questions_lists_them_and_its_command_draws_them_again() -> None:
    training = shipped_training()
    training.pop("base_training", None)
    assert "--replay" not in render(training, None) and "replayed" not in render(training, None)
    replay = {"path": "../shared/benchmarks/squad/train-v1.1.json", "sha256": "ab" * 32, "questions": 87599}
    training["data"]["replay"] = [{**replay, "drawn": 1417}]
    training["hyperparameters"]["replay_questions"] = 1417
    card = render(training, None)
    assert "--replay ../shared/benchmarks/squad/train-v1.1.json \\\n    --replay-questions 1417" in card
    assert "| ../shared/benchmarks/squad/train-v1.1.json | 1417 of 87599 (replayed) | abababababababab | SQuAD" in card
