"""SQuAD-format data for reader training: loading, windows over long contexts, and span labels.

A context longer than one window (COVID-QA's are whole papers) becomes overlapping windows, cut exactly as the
reader cuts them (`encode_windows`). A window holding the whole answer is labelled with the answer's first and
last tokens; any other window is labelled (0, 0), the no-answer position, so the model also learns to abstain.
All answer-bearing windows are kept and, per question, `negative_ratio` times as many windows without the
answer are drawn with the seed: the balance stays the same whatever the context length.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.errors import QAError
from qa.readers.transformers_reader import encode_windows

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

NO_ANSWER = (0, 0)


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
    windows: int = 0
    positive: int = 0
    negative_seen: int = 0
    negative_kept: int = 0
    examples_without_answer_window: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class TrainingFeatures:
    """Fixed-length windows with labels, ready to batch; `example_index[i]` is window i's question."""

    tensors: dict[str, torch.Tensor]
    example_index: list[int]
    stats: WindowStats = field(default_factory=WindowStats)

    def __len__(self) -> int:
        return len(self.example_index)


def build_features(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[SquadExample],
    max_length: int = 384,
    stride: int = 128,
    negative_ratio: float = 1.0,
    seed: int = 13,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> TrainingFeatures:
    """Windows and labels for every example: all answer-bearing windows, plus about `negative_ratio` windows
    without the answer per answer-bearing window of the same question (at least `negative_ratio` for a
    question with none), drawn with `seed`."""
    import torch

    if negative_ratio < 0:
        raise ValueError(f"negative_ratio must be >= 0, got {negative_ratio}")
    rng = random.Random(seed)
    stats = WindowStats()
    rows: dict[str, list[Any]] = {}
    labels: list[tuple[int, int]] = []
    example_index: list[int] = []
    for i, ex in enumerate(examples):
        win = encode_windows(tokenizer, ex.question, [ex.context], max_length, stride, padding="max_length")
        answer = ex.answer_span
        labelled = [label_window(win.offsets[w], win.context_mask[w], answer) for w in range(len(win))]
        positive = [w for w, lab in enumerate(labelled) if lab != NO_ANSWER]
        negative = [w for w, lab in enumerate(labelled) if lab == NO_ANSWER]
        want = negative_ratio * max(1, len(positive))
        n_neg = min(len(negative), int(want) + (rng.random() < want - int(want)))
        chosen = sorted(positive + rng.sample(negative, n_neg))
        for w in chosen:
            for name in tokenizer.model_input_names:
                if name in win.encoding:
                    rows.setdefault(name, []).append(win.encoding[name][w])
            labels.append(labelled[w])
            example_index.append(i)
        stats.examples += 1
        stats.windows += len(win)
        stats.positive += len(positive)
        stats.negative_seen += len(negative)
        stats.negative_kept += n_neg
        stats.examples_without_answer_window += answer is not None and not positive
        on_progress(1)
    tensors = {name: torch.stack(values) for name, values in rows.items()}
    tensors["start_positions"] = torch.tensor([s for s, _ in labels], dtype=torch.long)
    tensors["end_positions"] = torch.tensor([e for _, e in labels], dtype=torch.long)
    return TrainingFeatures(tensors, example_index, stats)
