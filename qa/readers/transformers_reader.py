"""Extractive reader over any transformers question-answering checkpoint (local folder or hub id).

What it reads: each retrieved chunk, never the whole document. The answer must cite the passage it came from
(`make_answer` refuses a span outside it), chunks are already shorter than one window, and widening a chunk to
its document would read the same document once per retrieved chunk for no new evidence.

Score: the model's own probability of the span within its window, p(start) * p(end), each a softmax over the
window's context tokens plus the no-answer position (CLS). That is in [0, 1], monotone in both logits, and on
the same scale in every window and passage; `details["null_score"]` is the same product at CLS, so a caller
can abstain when the model prefers "no answer" in that window.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.choices import parse_choice
from common.errors import ModelLoadError
from qa.answers import Answer, make_answer
from qa.readers.precision import Precision, resolve_precision, store_linear_weights_in_bf16

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from index.documents import Document
    from index.embedder import Embedder
    from index.passages import RetrievedPassage
    from qa.readers.base import ReaderOf
    from qa.readers.onnx_reader import OnnxQAModel
    from qa.settings import Settings

BUNDLED_READER_DIR = Path(__file__).resolve().parents[1] / "data" / "reader"
"""Where the compact trained reader ships inside the package (see its MODEL_CARD.md and `qa train-reader`)."""
CALIBRATION_FILE = "calibration.json"
"""Beside a model's weights: the abstention threshold and retrieval weight `qa calibrate` chose for it."""
UNCALIBRATED_MIN_SCORE = 0.5
"""For a model folder without calibration.json: abstain unless the span is more likely than not (span and
no-answer share one softmax per window, so 0.5 means the model prefers this span to everything else)."""


class ReaderBackend(StrEnum):
    """What runs the model call: torch (the reference and the default), or a locally exported fp32 ONNX graph
    (`qa.readers.onnx_reader`, the same logits). Tokenisation, windows and span decoding are the same code for
    both. No int8 choice: on var/reader-covidqa its best answer matched torch's on only 21 of 30 seed_dev
    questions (the export still records int8's agreement on its check questions, for a future model)."""

    TORCH = "torch"
    ONNX = "onnx"

    @classmethod
    def parse(cls, value: ReaderBackend | str) -> ReaderBackend:
        return parse_choice(cls, value, "reader backend")


@dataclass(frozen=True, slots=True)
class Windows:
    """Tokenised (question, context) windows: `sample[i]` is the context window i was cut from."""

    encoding: Any  # transformers.BatchEncoding, tensors of shape [n_windows, length]
    sample: list[int]
    context_mask: list[list[bool]]
    offsets: list[list[tuple[int, int]]]

    def __len__(self) -> int:
        return len(self.sample)


def fit_question(tokenizer: PreTrainedTokenizerBase, question: str, max_tokens: int) -> str:
    """Cut an over-long question at a token boundary: otherwise truncation="only_second" cannot fit a window."""
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_tokens:
        return question
    return question[: enc["offset_mapping"][max_tokens - 1][1]]


def encode_windows(
    tokenizer: PreTrainedTokenizerBase,
    question: str | Sequence[str],
    contexts: Sequence[str],
    max_length: int,
    stride: int,
    padding: bool | str = True,
) -> Windows:
    """Cut each (question, context) pair into overlapping windows; training and reading share this so both
    see the same windows. `stride` is the token overlap between neighbouring windows."""
    questions = [question] * len(contexts) if isinstance(question, str) else list(question)
    questions = [fit_question(tokenizer, q, max_length // 4) for q in questions]
    longest_q = max(len(tokenizer(q, add_special_tokens=False)["input_ids"]) for q in questions)
    room = max_length - longest_q - tokenizer.num_special_tokens_to_add(pair=True)
    stride = max(0, min(stride, room // 2))  # the tokenizer refuses a stride that leaves no room to advance
    enc = tokenizer(
        questions,
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=padding,
        return_tensors="pt",
    )
    context_mask = [[s == 1 for s in enc.sequence_ids(i)] for i in range(len(enc["input_ids"]))]
    offsets = [[(int(a), int(b)) for a, b in row] for row in enc.pop("offset_mapping").tolist()]
    sample = [int(s) for s in enc.pop("overflow_to_sample_mapping").tolist()]
    return Windows(enc, sample, context_mask, offsets)


WINDOW_CHECK_CONTEXT = "The dose was 400 mg twice daily. " * 40 + "The end."
"""325 MiniLM tokens, 8 windows of 64: a tokenizer that stops early leaves the end uncovered."""


def check_overflow_windows(tokenizer: PreTrainedTokenizerBase, max_length: int = 64, stride: int = 16) -> None:
    """Refuse a tokenizer whose windows stop before the end of a long context.

    tokenizers 0.23.1 and 0.23.2 stop tokenising a truncated input once `max_length` tokens exist, so
    `return_overflowing_tokens` returns too few windows (huggingface/tokenizers#2091, fixed in 0.23.3). The
    reader then never sees the rest of a long passage, and training labels every answer past the first windows
    "no answer". Seen on the device run of 2026-12-04 (tokenizers 0.23.2): one 43,957-character COVID-QA paper
    gave 2 windows instead of 64, and COVID-QA dev F1 read 0.086 there against 0.474 for the same weights here.
    """
    windows = encode_windows(tokenizer, "How does it end?", [WINDOW_CHECK_CONTEXT], max_length, stride)
    covered = max(
        (
            end
            for row, mask in zip(windows.offsets, windows.context_mask, strict=True)
            for (_, end), m in zip(row, mask, strict=True)
            if m
        ),
        default=0,
    )
    if covered < len(WINDOW_CHECK_CONTEXT.rstrip()):
        import tokenizers

        raise ModelLoadError(
            f"this tokenizer's overlapping windows stop at character {covered} of a {len(WINDOW_CHECK_CONTEXT)}-"
            f"character context ({len(windows)} windows): tokenizers {tokenizers.__version__} drops overflow "
            "windows (huggingface/tokenizers#2091, in 0.23.1 and 0.23.2), so long passages would be read only in "
            "part; install tokenizers>=0.23.3"
        )


def joins_word(text: str, i: int) -> bool:
    """Whether a span edge at character `i` of `text` would cut a word: the characters either side are letters
    or digits ("SR|C"), or a decimal point or thousands comma inside a number ("12|.1", "12.|1", "1,|171")."""
    if i <= 0 or i >= len(text):
        return False
    left, right = text[i - 1], text[i]
    if left.isalnum() and right.isalnum():
        return True
    if right in ".," and left.isdigit() and i + 1 < len(text) and text[i + 1].isdigit():
        return True
    return left in ".," and right.isdigit() and i >= 2 and text[i - 2].isdigit()


def word_edges(text: str, offsets: Sequence[tuple[int, int]]) -> tuple[list[bool], list[bool]]:
    """For each token of a window over `text` (character `offsets`), whether a span may start at it and whether
    one may end at it: only where the edge does not cut a word. WordPiece splits rare words ("SRC" is "sr",
    "##c"), and a span ending inside one misquotes the source: the shipped reader answered "SR" for "SRC"."""
    return [not joins_word(text, a) for a, _ in offsets], [not joins_word(text, b) for _, b in offsets]


def best_spans(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    context_mask: Sequence[bool],
    max_answer_tokens: int,
    top_n: int = 20,
    cls_index: int = 0,
    can_start: Sequence[bool] | None = None,
    can_end: Sequence[bool] | None = None,
) -> tuple[list[tuple[int, int, float, float, float]], float]:
    """Valid spans of one window, best first, as (start_token, end_token, score, p_start, p_end), and the
    window's no-answer score. Valid: start <= end < start + max_answer_tokens, both inside the context, the start
    where `can_start` allows one and the end where `can_end` does (every token when they are None). The
    probabilities stay those of the model's softmax over the whole context: the edges only choose among spans."""
    import torch

    allowed = torch.tensor(list(context_mask), dtype=torch.bool)
    if not bool(allowed.any()):
        return [], 1.0
    with_cls = allowed.clone()
    with_cls[cls_index] = True
    neg = torch.finfo(start_logits.dtype).min
    p_start = torch.softmax(start_logits.float().masked_fill(~with_cls, neg), dim=-1)
    p_end = torch.softmax(end_logits.float().masked_fill(~with_cls, neg), dim=-1)
    null = float(p_start[cls_index] * p_end[cls_index])
    start_ok = allowed if can_start is None else allowed & torch.tensor(list(can_start), dtype=torch.bool)
    end_ok = allowed if can_end is None else allowed & torch.tensor(list(can_end), dtype=torch.bool)
    k = min(top_n, int(start_ok.sum()), int(end_ok.sum()))
    if k == 0:
        return [], null
    starts = torch.topk(p_start.masked_fill(~start_ok, -1.0), k).indices
    ends = torch.topk(p_end.masked_fill(~end_ok, -1.0), k).indices
    scores = p_start[starts][:, None] * p_end[ends][None, :]
    length = ends[None, :] - starts[:, None]
    scores = scores.masked_fill((length < 0) | (length >= max_answer_tokens), -1.0)
    flat = scores.flatten()
    order = torch.argsort(flat, descending=True)
    order = order[flat[order] >= 0]  # invalid pairs were set to -1; a valid score is a product of probabilities
    # One conversion to Python numbers per tensor, not one per element (4 ms a question on seed_dev before).
    ps, pe = p_start.tolist(), p_end.tolist()
    span_starts, span_ends = starts[order // k].tolist(), ends[order % k].tolist()
    return [
        (s, e, score, ps[s], pe[e]) for s, e, score in zip(span_starts, span_ends, flat[order].tolist(), strict=True)
    ], null


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop surrounding whitespace: some tokenizers' offsets include the space before a word."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class TransformersReader:
    """Reads retrieved chunks with an extractive QA model; answers are verbatim, cited document spans."""

    name = "transformers"
    independent_passages = True
    """Each window's spans come from its own softmax; only candidates of one document are merged (same span)."""

    def __init__(
        self,
        model: str | Path = BUNDLED_READER_DIR,
        max_answer_tokens: int = 30,
        max_length: int = 256,
        stride: int = 64,
        batch_size: int = 16,
        top_n: int = 20,
        device: str | None = None,
        precision: Precision | str = Precision.AUTO,
        backend: ReaderBackend | str = ReaderBackend.TORCH,
        onnx_cache_dir: str | Path | None = None,
    ) -> None:
        self.model_name = str(model)
        self.min_score = UNCALIBRATED_MIN_SCORE
        self.retrieval_weight = 0.0
        self.coverage_exponent = 0.0
        self.secondary_ratio = 0.0
        self.calibration: dict[str, Any] | None = None
        self.precision = Precision.parse(precision)
        self.backend = ReaderBackend.parse(backend)
        if self.backend is not ReaderBackend.TORCH and self.precision is Precision.BF16:
            raise ValueError(f"precision {self.precision.value} is for the torch reader backend only")
        self.active_precision: Precision | None = None
        """FP32 or BF16 once warmed up: `precision` resolved for the device (auto: bf16 where it is native)."""
        self.onnx_cache_dir = onnx_cache_dir
        self.max_answer_tokens = max_answer_tokens
        self.max_length = max_length
        self.stride = stride
        self.batch_size = batch_size
        self.top_n = top_n
        self.device = device
        self._model: PreTrainedModel | None = None
        self._onnx: OnnxQAModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        # Fast tokenizers are not safe to call from two threads at once ("Already borrowed").
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def from_loaded(
        cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str = "in-memory", **config: Any
    ) -> TransformersReader:
        """A reader over a model already in memory (training evaluates its current weights this way)."""
        reader = cls(name, **config)
        reader._model, reader._tokenizer = model, tokenizer
        reader.device = str(next(model.parameters()).device)
        reader.active_precision = resolve_precision(reader.precision, reader.device)
        return reader

    def warm_up(self) -> None:
        if self._model is not None or self._onnx is not None:
            return
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        path = str(Path(self.model_name).expanduser())
        local = Path(path).is_dir()
        if not local and (Path(path).is_absolute() or path.startswith(".") or Path(path).exists()):
            raise ModelLoadError(f"reader model folder not found: {path}")
        if not local and self.backend is not ReaderBackend.TORCH:
            raise ModelLoadError(
                f"the {self.backend.value} reader backend exports a local model folder; {path} is not one"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
            if self.backend is ReaderBackend.TORCH:
                model = AutoModelForQuestionAnswering.from_pretrained(path, local_files_only=local, dtype=torch.float32)
        except Exception as err:
            raise ModelLoadError(
                f"cannot load reader model {self.model_name!r} ({type(err).__name__}: {err}); give a local "
                "folder with an extractive QA checkpoint (config, weights, tokenizer), or a hub id when online"
            ) from err
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError(f"reader model {self.model_name!r} has no fast tokenizer: offsets need one")
        check_overflow_windows(tokenizer)
        if local:
            self._load_calibration(Path(path) / CALIBRATION_FILE)
        if self.backend is ReaderBackend.TORCH:
            self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self._model = model.to(self.device).eval()
            self.active_precision = resolve_precision(self.precision, self.device)
            if self.active_precision is Precision.BF16:
                store_linear_weights_in_bf16(self._model)  # the same logits as autocast alone, ~10% sooner
        else:
            self._onnx = self._onnx_model(path)
            self.active_precision = Precision.FP32
        self._tokenizer = tokenizer

    def _load_calibration(self, path: Path) -> None:
        if not path.is_file():
            return
        import json

        try:
            calibration = json.loads(path.read_text(encoding="utf-8"))
            min_score, weight = float(calibration["min_answer_score"]), float(calibration["retrieval_weight"])
            # older calibrations have neither: both off
            exponent = float(calibration.get("coverage_exponent", 0.0))
            ratio = float(calibration.get("secondary_ratio", 0.0))
        except (ValueError, KeyError, TypeError) as err:
            raise ModelLoadError(f"{path}: not a reader calibration ({type(err).__name__}: {err})") from err
        if not (0 <= min_score <= 1 and 0 <= weight <= 1 and 0 <= ratio <= 1) or exponent < 0:
            raise ModelLoadError(
                f"{path}: min_answer_score, retrieval_weight and secondary_ratio must lie in [0, 1], "
                "coverage_exponent >= 0"
            )
        self.min_score, self.retrieval_weight, self.calibration = min_score, weight, calibration
        self.coverage_exponent, self.secondary_ratio = exponent, ratio

    def _onnx_model(self, path: str) -> OnnxQAModel:
        try:
            from qa.readers.onnx_reader import OnnxQAModel
            from runtimes.onnx_export import DEFAULT_ONNX_CACHE, OnnxPrecision
        except ImportError as err:
            raise ModelLoadError(
                f"the {self.backend.value} reader backend needs onnxruntime and onnx; reinstall the project "
                "(pip install -e .) or use QA_READER_BACKEND=torch"
            ) from err
        onnx = OnnxQAModel(path, OnnxPrecision.FP32, self.onnx_cache_dir or DEFAULT_ONNX_CACHE)
        onnx.warm_up()
        return onnx

    @property
    def model(self) -> PreTrainedModel:
        if self._model is None:
            raise RuntimeError("TransformersReader.warm_up() must run before use")
        return self._model

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        if self._tokenizer is None:
            raise RuntimeError("TransformersReader.warm_up() must run before use")
        return self._tokenizer

    def _logits(self, windows: Windows) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits of every window, [n_windows, length] float32 on the CPU, from either backend."""
        import torch

        names = [n for n in self.tokenizer.model_input_names if n in windows.encoding]
        starts, ends = [], []
        if self._onnx is not None:
            for i in range(0, len(windows), self.batch_size):
                start, end = self._onnx({n: windows.encoding[n][i : i + self.batch_size].numpy() for n in names})
                starts.append(torch.from_numpy(start))
                ends.append(torch.from_numpy(end))
            return torch.cat(starts), torch.cat(ends)
        autocast = torch.autocast(
            device_type=str(self.device).split(":")[0],
            dtype=torch.bfloat16,
            enabled=self.active_precision is Precision.BF16,
        )
        with torch.inference_mode(), autocast:
            for i in range(0, len(windows), self.batch_size):
                batch = {n: windows.encoding[n][i : i + self.batch_size].to(self.device) for n in names}
                out = self.model(**batch)
                starts.append(out.start_logits.float().cpu())
                ends.append(out.end_logits.float().cpu())
        return torch.cat(starts), torch.cat(ends)

    def run(
        self,
        question: str,
        passages: Sequence[RetrievedPassage],
        documents: Mapping[str, Document],
        max_answers: int = 5,
    ) -> list[Answer]:
        readable = [p for p in passages if p.chunk.text.strip()]
        if not readable or not question.strip() or max_answers <= 0:
            return []
        tokenizer = self.tokenizer
        with self._tokenizer_lock:
            windows = encode_windows(
                tokenizer, question, [p.chunk.text for p in readable], self.max_length, self.stride
            )
        start_logits, end_logits = self._logits(windows)
        input_ids = windows.encoding["input_ids"]
        best: dict[tuple[str, int, int], Answer] = {}
        for w in range(len(windows)):
            passage = readable[windows.sample[w]]
            chunk = passage.chunk
            doc = documents[chunk.doc_id]
            cls_positions = (
                (input_ids[w] == tokenizer.cls_token_id).nonzero() if tokenizer.cls_token_id is not None else []
            )
            cls_index = int(cls_positions[0]) if len(cls_positions) else 0
            can_start, can_end = word_edges(chunk.text, windows.offsets[w])
            spans, null = best_spans(
                start_logits[w],
                end_logits[w],
                windows.context_mask[w],
                self.max_answer_tokens,
                self.top_n,
                cls_index,
                can_start,
                can_end,
            )
            kept = 0
            for s, e, score, p_start, p_end in spans:
                a, b = _trim(chunk.text, windows.offsets[w][s][0], windows.offsets[w][e][1])
                if a >= b:
                    continue
                key = (doc.id, chunk.start + a, chunk.start + b)
                if key in best and best[key].score >= score:
                    kept += 1
                    continue
                best[key] = make_answer(
                    question,
                    doc.text,
                    doc.id,
                    chunk.id,
                    chunk.start,
                    chunk.end,
                    chunk.start + a,
                    chunk.start + b,
                    self.name,
                    score,
                    retrieval_score=passage.score,
                    details={"null_score": null, "start_prob": p_start, "end_prob": p_end, "window": float(w)},
                )
                kept += 1
                if kept >= max_answers:
                    break
        ranked = sorted(best.values(), key=lambda x: (-x.score, x.doc_id, x.start, x.end))
        return ranked[:max_answers]


def from_settings(settings: Settings, embedder: Embedder, reader_of: ReaderOf) -> TransformersReader:
    """The registry's factory (qa.readers.base.READERS): the trained reader the settings name."""
    return TransformersReader(
        model=settings.reader_model,
        max_answer_tokens=settings.max_answer_tokens,
        precision=settings.reader_precision,
        backend=settings.reader_backend,
        onnx_cache_dir=settings.onnx_cache_path(),
    )
