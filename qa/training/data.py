"""SQuAD-format data for reader training: loading, unanswerable pairings, windows over long contexts, labels.

Windows are cut in one batched call of the fast tokenizer per block of examples (as the standard SQuAD
preprocessing does), with the same question fitting, truncation and stride as the reader's `encode_windows`,
so training sees the windows the service reads. A window holding the whole answer is labelled with the
answer's first and last tokens; any other window is labelled (0, 0), the no-answer position (CLS). All
answer-bearing windows are kept and, per question, `negative_ratio` times as many windows without the answer
are drawn with the seed; `hard_negative_share` of them are instead the question's hardest ones (`hardest_negatives`:
the windows that share the most of the question's rare words, as retrieval would hand them to the reader).

Windows are stored unpadded (int32 token ids): a batch is padded to its own longest window (`collate`), and
`length_grouped_batches` puts windows of similar length together, so a step pays for the tokens it has.

SQuAD v1.1 has no unanswerable questions; two functions make them. `pair_unanswerable` asks a question of
another paragraph of the same article (same topic, same vocabulary), skipped when that paragraph contains one of
the question's answers. `swap_unanswerable` keeps the paragraph and changes the question: one of its specific
words that the passage uses (a name, a number, a term outside everyday English) becomes a word of the same kind
from another article that the passage never uses: SQuAD 2.0's "entity swap" (Rajpurkar et al. 2018, table 3),
the case of a question about a drug or trial the abstract does not report ("the median survival with
tivozanib?" read against a sorafenib trial). The passage is cut to the answer's neighbourhood, so the window the
model learns to decline is the one that holds the original answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.errors import QAError
from qa.english import FUNCTION_WORDS
from qa.readers.transformers_reader import check_overflow_windows

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

NO_ANSWER = (0, 0)
TOKENIZE_BLOCK = 2000
"""Examples per batched tokenizer call: large enough for the Rust tokenizer's parallelism, small enough to keep
its offset mappings in memory briefly."""
PAD_MULTIPLE = 8
"""Batches are padded to a multiple of 8 tokens: fewer distinct shapes for the CPU kernels."""


class TrainingDataError(QAError):
    """A training or evaluation file cannot be used; the message names the file and the question."""


@dataclass(frozen=True, slots=True)
class SquadExample:
    """One question on one context. `answers` are (text, char start) with surrounding whitespace removed;
    empty for an unanswerable question."""

    id: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]
    document_id: str

    @property
    def answer_span(self) -> tuple[int, int] | None:
        """The first answer's character span: the training label, as in SQuAD practice."""
        if not self.answers:
            return None
        text, start = self.answers[0]
        return start, start + len(text)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_squad(path: str | Path) -> list[SquadExample]:
    """Read a SQuAD 1.1/2.0 file; every answer offset is checked against its context."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except FileNotFoundError:
        raise TrainingDataError(f"{path}: no such file") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise TrainingDataError(f"{path}: not a SQuAD-format file ({type(err).__name__}: {err})") from None
    out: list[SquadExample] = []
    for a, article in enumerate(data):
        for p, para in enumerate(article.get("paragraphs", [])):
            context = para["context"]
            doc_id = str(para.get("document_id", article.get("title", f"{a}-{p}")))
            for qa in para.get("qas", []):
                answers = []
                for ans in [] if qa.get("is_impossible") else qa.get("answers", []):
                    start, text = int(ans["answer_start"]), ans["text"]
                    if context[start : start + len(text)] != text:
                        raise TrainingDataError(
                            f"{path}: question {qa.get('id')}: answer {text!r} is not at offset {start} of its context"
                        )
                    stripped = text.strip()
                    if stripped:
                        answers.append((stripped, start + len(text) - len(text.lstrip())))
                out.append(SquadExample(str(qa["id"]), qa["question"].strip(), context, tuple(answers), doc_id))
    if not out:
        raise TrainingDataError(f"{path}: no questions")
    return out


def draw_count(rng: random.Random, expected: float) -> int:
    """A whole number whose mean is `expected`: its integer part, plus one with the probability of its fraction
    (one draw of `rng`, even for a whole `expected`, so every caller's later draws stay where they were)."""
    return int(expected) + (rng.random() < expected - int(expected))


def pair_unanswerable(examples: Sequence[SquadExample], ratio: float, seed: int) -> list[SquadExample]:
    """About `ratio` unanswerable examples per answerable one: its question asked of another context of the same
    document (article), skipped where that context contains any of its answers. Drawn with `seed`."""
    if ratio <= 0:
        return []
    rng = random.Random(seed)
    contexts: dict[str, list[str]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for ex in examples:
        if (ex.document_id, ex.context) not in seen:  # each article's contexts in order of first appearance
            seen.add((ex.document_id, ex.context))
            contexts[ex.document_id].append(ex.context)
    out: list[SquadExample] = []
    for ex in examples:
        if not ex.answers:
            continue
        n = draw_count(rng, ratio)
        others = [c for c in contexts[ex.document_id] if c != ex.context]
        if not n or not others:
            continue
        for k, context in enumerate(rng.sample(others, min(n, len(others)))):
            if any(text.lower() in context.lower() for text, _ in ex.answers):
                continue
            out.append(SquadExample(f"{ex.id}#unanswerable-{k}", ex.question, context, (), ex.document_id))
    return out


SWAP_EXCERPT_CHARS = 700
"""Characters kept either side of the answer in a swapped question's passage: about 150 tokens, so the passage
is one or two 256-token windows around the original answer (a long paper's other windows are easy negatives that
`negative_ratio` already supplies)."""
SWAP_TRIES = 20
"""Replacement words drawn before giving up on a question (one whose passage uses every candidate)."""
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]|[A-Za-z0-9]")


def _swap_kind(word: str, position: int, everyday: frozenset[str]) -> str | None:
    """What a replacement for this question word must look like, or None for a word that says nothing specific
    (a function word, an everyday word, a short one). Numbers keep their length (a year becomes a year); names
    keep their shape: "Capitalised" (past the question's first word), "lower" (outside everyday English: a drug,
    a gene) or "MIXED" (an acronym or a symbol: "ICU", "DC-SIGNR")."""
    lower = word.lower()
    if lower in FUNCTION_WORDS:
        return None
    if any(c.isdigit() for c in word):
        return f"number-{len(word)}"
    if len(word) < 3:
        return None
    if any(c.isupper() for c in word[1:]):
        return "MIXED"
    if position > 0 and word[0].isupper():
        return "Capitalised"
    if word.islower() and lower not in everyday:
        return "lower"
    return None


def _mentions(text_lower: str, word: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(word.lower())}(?![a-z0-9])", text_lower) is not None


def _excerpt(context: str, start: int, end: int, chars: int) -> str:
    """The context from about `chars` before `start` to about `chars` after `end`, cut at whitespace."""
    lo = max(0, start - chars)
    hi = min(len(context), end + chars)
    if lo > 0:
        space = context.find(" ", lo, start)
        lo = space + 1 if space >= 0 else lo
    if hi < len(context):
        space = context.rfind(" ", end, hi)
        hi = space if space >= 0 else hi
    return context[lo:hi]


def swap_unanswerable(
    examples: Sequence[SquadExample],
    ratio: float,
    seed: int,
    everyday: frozenset[str] | None = None,
    excerpt_chars: int = SWAP_EXCERPT_CHARS,
) -> list[SquadExample]:
    """About `ratio` unanswerable examples per answerable one: the question with one specific word that its
    passage uses replaced by a word of the same kind (`_swap_kind`) taken from a question about another article
    and absent from the passage; the passage is the answer's neighbourhood (`excerpt_chars` either side).
    `everyday`: whole English words (default: the bundled reader's WordPiece vocabulary, as question coverage
    uses). Drawn with `seed`."""
    if ratio <= 0:
        return []
    if everyday is None:
        from qa.coverage import everyday_words

        everyday = everyday_words()
    rng = random.Random(seed)
    pool: dict[str, list[tuple[str, str]]] = defaultdict(list)  # kind -> (word, its question's document)
    specific: list[list[tuple[str, int, int, str]]] = []  # per example: (word, start, end, kind)
    for ex in examples:
        words = []
        for i, m in enumerate(_WORD.finditer(ex.question)):
            kind = _swap_kind(m.group(), i, everyday)
            if kind is not None:
                words.append((m.group(), m.start(), m.end(), kind))
                if ex.answers:
                    pool[kind].append((m.group(), ex.document_id))
        specific.append(words)
    out: list[SquadExample] = []
    for ex, words in zip(examples, specific, strict=True):
        span = ex.answer_span
        n = draw_count(rng, ratio)
        if span is None or not n or not words:
            continue
        context = _excerpt(ex.context, *span, excerpt_chars)
        lower = context.lower()
        answers = " ".join(text.lower() for text, _ in ex.answers)
        anchored = [w for w in words if _mentions(lower, w[0]) and not _mentions(answers, w[0])]
        for k in range(min(n, len(anchored))):
            word, start, end, kind = anchored[rng.randrange(len(anchored))]
            choices = pool[kind]
            for _ in range(SWAP_TRIES):
                new, doc = choices[rng.randrange(len(choices))]
                fits = doc != ex.document_id and new.lower() != word.lower()
                if fits and not _mentions(lower, new) and not _mentions(ex.question.lower(), new):
                    question = ex.question[:start] + new + ex.question[end:]
                    out.append(SquadExample(f"{ex.id}#swap-{k}", question, context, (), ex.document_id))
                    break
    return out


def label_window(
    offsets: Sequence[tuple[int, int]], context_mask: Sequence[bool], answer: tuple[int, int] | None
) -> tuple[int, int]:
    """Token indices of the answer's first and last tokens in this window, or (0, 0) when the window does not
    hold the whole answer."""
    ctx = [i for i, m in enumerate(context_mask) if m]
    if answer is None or not ctx:
        return NO_ANSWER
    start_char, end_char = answer
    first, last = ctx[0], ctx[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return NO_ANSWER
    s = first
    while s <= last and offsets[s][0] <= start_char:
        s += 1
    e = last
    while e >= first and offsets[e][1] >= end_char:
        e -= 1
    return s - 1, e + 1


@dataclass(slots=True)
class WindowStats:
    examples: int = 0
    unanswerable_examples: int = 0
    windows: int = 0
    positive: int = 0
    negative_seen: int = 0
    negative_kept: int = 0
    negative_hard: int = 0
    examples_without_answer_window: int = 0
    tokens_kept: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class TrainingFeatures:
    """Unpadded windows with labels: `input_ids[i]` and `token_type_ids[i]` are window i's tokens (int32 and
    int8), `start_positions[i]`/`end_positions[i]` its label, `example_index[i]` its question."""

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    start_positions: np.ndarray
    end_positions: np.ndarray
    example_index: np.ndarray
    stats: WindowStats = field(default_factory=WindowStats)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def collate(self, indices: Sequence[int], pad_token_id: int = 0) -> dict[str, torch.Tensor]:
        """Windows `indices` padded to the longest of them (rounded up to PAD_MULTIPLE), as model inputs."""
        import torch

        longest = max(len(self.input_ids[i]) for i in indices)
        width = -(-longest // PAD_MULTIPLE) * PAD_MULTIPLE
        ids = np.full((len(indices), width), pad_token_id, dtype=np.int64)
        mask = np.zeros((len(indices), width), dtype=np.int64)
        types = np.zeros((len(indices), width), dtype=np.int64) if self.token_type_ids is not None else None
        for row, i in enumerate(indices):
            n = len(self.input_ids[i])
            ids[row, :n] = self.input_ids[i]
            mask[row, :n] = 1
            if types is not None and self.token_type_ids is not None:
                types[row, :n] = self.token_type_ids[i]
        batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if types is not None:
            batch["token_type_ids"] = torch.from_numpy(types)
        picked = np.asarray(indices)
        batch["start_positions"] = torch.from_numpy(self.start_positions[picked].astype(np.int64))
        batch["end_positions"] = torch.from_numpy(self.end_positions[picked].astype(np.int64))
        return batch


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int, megabatch: int = 50) -> list[np.ndarray]:
    """A seeded epoch of batches in which windows of similar length go together: shuffle, cut into megabatches
    of `megabatch` batches, sort each by length, cut into batches, shuffle the batch order (the sampler of
    transformers' `group_by_length`). The same (lengths, batch_size, seed) give the same batches."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    size = batch_size * megabatch
    batches: list[np.ndarray] = []
    for lo in range(0, len(order), size):
        mega = order[lo : lo + size]
        mega = mega[np.argsort(-lengths[mega], kind="stable")]
        batches.extend(mega[i : i + batch_size] for i in range(0, len(mega), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def content_token_mask(tokenizer: PreTrainedTokenizerBase) -> np.ndarray:
    """For each vocabulary id, whether the token can carry a question's topic: a piece of at least two letters or
    digits that is not a function word or a special token (WordPiece "##", BPE "Ġ" and SentencePiece "▁" marks
    removed first)."""
    vocab = tokenizer.get_vocab()
    special = set(tokenizer.all_special_tokens)
    mask = np.zeros(max(vocab.values()) + 1, dtype=bool)
    for token, i in vocab.items():
        word = token.removeprefix("##").lstrip("Ġ▁")
        mask[i] = token not in special and len(word) >= 2 and word.isalnum() and word.lower() not in FUNCTION_WORDS
    return mask


def hardest_negatives(
    question_ids: set[int], window_ids: Sequence[set[int]], candidates: Sequence[int], n: int
) -> list[int]:
    """The `n` of `candidates` (indices into `window_ids`, each window's content-token ids) that share the most of
    `question_ids`, each shared token weighted by its inverse frequency among all the windows (a word every
    window of the paper uses tells none of them apart); ties keep the earlier window."""
    if n <= 0 or not candidates:
        return []
    total = len(window_ids)
    df: dict[int, int] = defaultdict(int)
    for ids in window_ids:
        for t in ids & question_ids:
            df[t] += 1
    weight = {t: np.log((total + 1) / (d + 0.5)) for t, d in df.items()}

    def overlap(w: int) -> float:
        return float(sum(weight[t] for t in window_ids[w] & question_ids))

    return sorted(sorted(candidates, key=lambda w: -overlap(w))[:n])


def _fit_questions(tokenizer: PreTrainedTokenizerBase, questions: Sequence[str], max_tokens: int) -> list[str]:
    """`fit_question` for many questions in one tokenizer call."""
    enc = tokenizer(list(questions), add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for q, ids, offsets in zip(questions, enc["input_ids"], enc["offset_mapping"], strict=True):
        out.append(q if len(ids) <= max_tokens else q[: offsets[max_tokens - 1][1]])
    return out


def max_safe_stride(tokenizer: PreTrainedTokenizerBase, max_length: int) -> int:
    """The largest stride every window keeps, whatever the question (questions are cut at max_length // 4
    tokens), so the batched builder cuts the windows the reader cuts (`encode_windows` clips larger ones)."""
    return (max_length - max_length // 4 - tokenizer.num_special_tokens_to_add(pair=True)) // 2


def _hard_negatives(
    enc: Any, wins: Sequence[int], negative: Sequence[int], ex: SquadExample, content: np.ndarray, n: int
) -> list[int]:
    """`hardest_negatives` over one example's windows of a batched encoding `enc`, leaving out the negative
    windows whose context holds the answer's text (case aside)."""
    if n <= 0:
        return []
    question: set[int] = set()
    window_ids: list[set[int]] = []
    sequences = {w: enc.sequence_ids(w) for w in wins}
    for w in wins:
        ids = np.asarray(enc["input_ids"][w])
        seq = sequences[w]
        keep = (ids < len(content)) & content[np.minimum(ids, len(content) - 1)]
        if not question:
            question = {int(t) for t, q, k in zip(ids, seq, keep, strict=True) if q == 0 and k}
        window_ids.append({int(t) for t, c, k in zip(ids, seq, keep, strict=True) if c == 1 and k})
    answer = ex.answers[0][0].lower() if ex.answers else None
    position = {w: i for i, w in enumerate(wins)}
    candidates = []
    for w in negative:
        if answer:
            offsets = [o for o, c in zip(enc["offset_mapping"][w], sequences[w], strict=True) if c == 1]
            if offsets and answer in ex.context[offsets[0][0] : offsets[-1][1]].lower():
                continue
        candidates.append(position[w])
    return [wins[i] for i in hardest_negatives(question, window_ids, candidates, min(n, len(candidates)))]


def build_features(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[SquadExample],
    max_length: int = 256,
    stride: int = 64,
    negative_ratio: float = 1.0,
    seed: int = 13,
    on_progress: Callable[[int], None] = lambda _n: None,
    hard_negative_share: float = 0.0,
) -> TrainingFeatures:
    """Windows and labels for every example: all answer-bearing windows, plus about `negative_ratio` windows
    without the answer per answer-bearing window of the same question (at least `negative_ratio` for a
    question with none), drawn with `seed`. Of those, `hard_negative_share` (on average) are the question's hardest
    (`hardest_negatives`) among the windows whose text does not hold the answer's words elsewhere (such a window is
    more likely an unmarked answer than a negative); the rest are drawn as before."""
    if negative_ratio < 0:
        raise ValueError(f"negative_ratio must be >= 0, got {negative_ratio}")
    if not 0 <= hard_negative_share <= 1:
        raise ValueError(f"hard_negative_share must be in [0, 1], got {hard_negative_share}")
    content = content_token_mask(tokenizer) if hard_negative_share > 0 else None
    if stride > max_safe_stride(tokenizer, max_length):
        raise ValueError(
            f"stride {stride} is too large for windows of {max_length} tokens (at most "
            f"{max_safe_stride(tokenizer, max_length)}, so that a long question still leaves room to advance)"
        )
    check_overflow_windows(tokenizer)  # or the labels call answers past the first windows unanswerable
    rng = random.Random(seed)
    stats = WindowStats()
    input_ids: list[np.ndarray] = []
    type_ids: list[np.ndarray] | None = [] if "token_type_ids" in tokenizer.model_input_names else None
    starts: list[int] = []
    ends: list[int] = []
    example_index: list[int] = []
    for lo in range(0, len(examples), TOKENIZE_BLOCK):
        block = examples[lo : lo + TOKENIZE_BLOCK]
        enc = tokenizer(
            _fit_questions(tokenizer, [ex.question for ex in block], max_length // 4),
            [ex.context for ex in block],
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        by_example: dict[int, list[int]] = defaultdict(list)
        for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
            by_example[sample].append(w)
        for j, ex in enumerate(block):
            wins = by_example[j]
            answer = ex.answer_span
            labelled = []
            for w in wins:
                mask = [s == 1 for s in enc.sequence_ids(w)]
                labelled.append(label_window(enc["offset_mapping"][w], mask, answer))
            positive = [w for w, lab in zip(wins, labelled, strict=True) if lab != NO_ANSWER]
            negative = [w for w, lab in zip(wins, labelled, strict=True) if lab == NO_ANSWER]
            want = negative_ratio * max(1, len(positive))
            n_neg = min(len(negative), draw_count(rng, want))
            hard: list[int] = []
            if content is not None:
                hard = _hard_negatives(enc, wins, negative, ex, content, draw_count(rng, hard_negative_share * n_neg))
            rest = [w for w in negative if w not in hard]
            chosen = sorted(positive + hard + rng.sample(rest, n_neg - len(hard)))
            label_of = dict(zip(wins, labelled, strict=True))
            for w in chosen:
                ids = np.asarray(enc["input_ids"][w], dtype=np.int32)
                input_ids.append(ids)
                if type_ids is not None:
                    type_ids.append(np.asarray(enc["token_type_ids"][w], dtype=np.int8))
                s, e = label_of[w]
                starts.append(s)
                ends.append(e)
                example_index.append(lo + j)
                stats.tokens_kept += len(ids)
            stats.examples += 1
            stats.unanswerable_examples += answer is None
            stats.windows += len(wins)
            stats.positive += len(positive)
            stats.negative_seen += len(negative)
            stats.negative_kept += n_neg
            stats.negative_hard += len(hard)
            stats.examples_without_answer_window += answer is not None and not positive
        on_progress(len(block))
    return TrainingFeatures(
        input_ids,
        type_ids,
        np.asarray(starts, dtype=np.int32),
        np.asarray(ends, dtype=np.int32),
        np.asarray(example_index, dtype=np.int64),
        stats,
    )


def features_digest(features: TrainingFeatures) -> str:
    """A fingerprint of the windows and labels, so a resumed run can tell it is reading the same data."""
    h = hashlib.sha256()
    for ids in features.input_ids:
        h.update(ids.tobytes())
    h.update(features.start_positions.tobytes())
    h.update(features.end_positions.tobytes())
    return h.hexdigest()[:16]


def describe(features: TrainingFeatures) -> dict[str, Any]:
    lengths = features.lengths
    return {
        **features.stats.to_json(),
        "kept": len(features),
        "mean_length": round(float(lengths.mean()), 1) if len(lengths) else 0.0,
    }
