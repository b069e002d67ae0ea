"""Fine-tune an extractive QA reader on SQuAD-format data; keep the weights with the best dev F1.

Plain torch (AdamW, linear warm-up then linear decay), one process, one GPU when there is one: the loop is short
enough to read, and checkpoints hold only state dicts of tensors and plain values, saved with `torch.save` and
read back with `torch.load(weights_only=True)`, so a checkpoint can never run code. A resumed run continues
the same trajectory: the batch order is a function of (seed, epoch) and the dropout RNG state is restored.

Dev evaluation reads each question against its own context with the same `TransformersReader` the service
uses (oracle retrieval), scored with SQuAD's answer normalisation, exact match and token F1.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from common.errors import ModelLoadError, QAError
from index.documents import Chunk, Document
from index.passages import RetrievedPassage
from qa.metrics import exact_match, f1_score
from qa.readers.precision import Precision, cpu_flags, native_bf16, resolve_precision
from qa.training.data import (
    SquadExample,
    TrainingDataError,
    build_features,
    describe,
    features_digest,
    length_grouped_batches,
    load_squad,
    pair_unanswerable,
    sha256_file,
    swap_unanswerable,
)
from runtimes.models import BUNDLED_MODEL, resolve_model_path

if TYPE_CHECKING:
    from qa.readers.base import Reader

DEFAULT_BASE_MODEL = BUNDLED_MODEL
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "state.pt"
Say = Callable[[str], None]


class TrainingError(QAError):
    """Training cannot start or continue as asked; the message says why."""


@dataclass(slots=True)
class EvalResult:
    exact_match: float
    f1: float
    questions: int
    predictions: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int]:
        return {"exact_match": round(self.exact_match, 4), "f1": round(self.f1, 4), "questions": self.questions}


def evaluate_reader(
    reader: Reader, examples: Sequence[SquadExample], progress: bool = False, desc: str = "eval"
) -> EvalResult:
    """Oracle-context EM/F1: each question is read against its whole own context; the top answer counts
    (these sets have no unanswerable questions, so the reader never abstains here)."""
    from tqdm.auto import tqdm

    ems, f1s, predictions = [], [], {}
    for ex in tqdm(examples, desc=desc, unit="q", disable=not progress, mininterval=5):
        doc = Document(id=f"context:{ex.document_id}", text=ex.context)
        passage = RetrievedPassage(chunk=Chunk.from_document(doc, 0, len(doc.text), 0), score=1.0, rank=1)
        answers = reader.run(ex.question, [passage], {doc.id: doc}, max_answers=1)
        pred = answers[0].text if answers else ""
        golds = [text for text, _ in ex.answers] or [""]
        ems.append(exact_match(pred, golds))
        f1s.append(f1_score(pred, golds))
        predictions[ex.id] = pred
    n = len(examples)
    return EvalResult(sum(ems) / max(1, n), sum(f1s) / max(1, n), n, predictions)


# --- configuration -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """One training run. `train_paths` are read and shuffled together (SQuAD and COVID-QA train, say);
    the checkpoint kept is the one with the best mean F1 over the `dev_paths` samples. `replay_questions`
    questions drawn by the seed from `replay_paths` join them: rehearsal, so that a domain step (COVID-QA on a
    SQuAD-trained base) keeps what the base learned instead of forgetting it."""

    train_paths: tuple[Path, ...]
    dev_paths: tuple[Path, ...]
    output_dir: Path
    replay_paths: tuple[Path, ...] = ()
    replay_questions: int = 0
    base_model: str = DEFAULT_BASE_MODEL
    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 256
    stride: int = 64
    negative_ratio: float = 1.0
    hard_negative_share: float = 0.0
    unanswerable_ratio: float = 0.0
    swap_ratio: float = 0.0
    seed: int = 13
    max_steps: int | None = None
    grad_clip: float = 1.0
    precision: Precision = Precision.AUTO  # resolved for the device when the run starts
    # Evaluation and bookkeeping: they do not change the weights' trajectory, so a resume may change them.
    eval_every: int | None = None
    dev_sample: int = 100
    eval_max_answer_tokens: int = 64
    checkpoint_every: int = 100
    threads: int | None = None
    resume: bool = False
    # Score the kept weights on each whole dev file at the end (SQuAD dev: 10,570 questions). Off where several
    # runs are compared on their dev samples first and only the one kept is scored (`score_saved_reader`).
    final_eval: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.train_paths, (str, Path)):
            object.__setattr__(self, "train_paths", (Path(self.train_paths),))
        if isinstance(self.dev_paths, (str, Path)):
            object.__setattr__(self, "dev_paths", (Path(self.dev_paths),))
        object.__setattr__(self, "train_paths", tuple(Path(p) for p in self.train_paths))
        object.__setattr__(self, "dev_paths", tuple(Path(p) for p in self.dev_paths))
        object.__setattr__(self, "replay_paths", tuple(Path(p) for p in self.replay_paths))
        if self.replay_questions < 0 or bool(self.replay_paths) != (self.replay_questions > 0):
            raise TrainingError(
                "replay needs both the files (--replay) and how many of their questions to draw "
                f"(--replay-questions > 0); got {len(self.replay_paths)} file(s) and {self.replay_questions} questions"
            )
        if not self.train_paths or not self.dev_paths:
            raise TrainingError("at least one training file and one dev file are needed")
        for name in ("epochs", "batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be >= 1")
        if not 0 <= self.stride < self.max_length:
            raise TrainingError(f"stride must be in [0, max_length), got {self.stride}")
        ratios = (self.negative_ratio, self.unanswerable_ratio, self.swap_ratio)
        if self.lr <= 0 or min(ratios) < 0 or not 0 <= self.warmup_ratio < 1:
            raise TrainingError(
                "lr must be > 0, negative_ratio, unanswerable_ratio and swap_ratio >= 0 and warmup_ratio in [0, 1)"
            )
        if not 0 <= self.hard_negative_share <= 1:
            raise TrainingError(f"hard_negative_share must be in [0, 1], got {self.hard_negative_share}")

    def trajectory(self) -> dict[str, Any]:
        """What determines the weights; a checkpoint resumes only under the same values."""
        return {
            "base_model": self.base_model,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "warmup_ratio": self.warmup_ratio,
            "max_length": self.max_length,
            "stride": self.stride,
            "negative_ratio": self.negative_ratio,
            **({"hard_negative_share": self.hard_negative_share} if self.hard_negative_share else {}),
            "unanswerable_ratio": self.unanswerable_ratio,
            "swap_ratio": self.swap_ratio,
            "replay_questions": self.replay_questions,
            "seed": self.seed,
            "max_steps": self.max_steps,
            "grad_clip": self.grad_clip,
            "precision": str(self.precision),
            "batching": "length-grouped (megabatches of 50 batches), padded to the batch's longest window",
        }


def check_separate(config: TrainConfig, train: Sequence[SquadExample], dev: Sequence[SquadExample]) -> None:
    """Refuse test data for training and any context shared by train and dev (selection would be optimistic)."""
    for path in (*config.train_paths, *config.replay_paths):
        if "test" in path.name.lower():
            raise TrainingError(f"refusing to train on {path}: test splits are for measurement only")
        if any(path.resolve() == d.resolve() for d in config.dev_paths):
            raise TrainingError(f"{path} is both a training and a dev file")
    for path in config.replay_paths:
        if any(path.resolve() == t.resolve() for t in config.train_paths):
            raise TrainingError(f"{path} is both a training and a replay file: its questions would be seen twice")
    train_contexts = {hashlib.sha256(ex.context.encode()).digest() for ex in train}
    shared = [ex.id for ex in dev if hashlib.sha256(ex.context.encode()).digest() in train_contexts]
    if shared:
        raise TrainingError(f"{len(shared)} dev questions share their context with training data, e.g. {shared[0]}")


Item = TypeVar("Item")


def dev_subset(dev: Sequence[Item], n: int, seed: int) -> list[Item]:
    """A fixed sample of questions in their file order (same seed, same sample): dev questions for the cheaper
    in-training evaluations, replayed training questions for a domain step."""
    if n <= 0 or n >= len(dev):
        return list(dev)
    keep = set(random.Random(seed).sample(range(len(dev)), n))
    return [ex for i, ex in enumerate(dev) if i in keep]


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up to `base`, then linear decay to 0 at `total`."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * max(0.0, (total - step) / max(1, total - warmup))


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_precision(precision: Precision, device: str, flags: set[str] | None = None) -> None:
    """Refuse bf16 training on a CPU that would emulate it (20x slower than fp32), naming the way out."""
    if precision is not Precision.BF16 or device != "cpu":
        return
    flags = cpu_flags() if flags is None else flags
    if flags and not native_bf16(device, flags):
        raise TrainingError(
            "--precision bf16 on this CPU would be emulated (no avx512_bf16 or amx_bf16 flag in /proc/cpuinfo): "
            "a step runs about 20x slower than fp32; train with --precision fp32"
        )


# --- checkpoints ---------------------------------------------------------------------------------------------


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic: a run killed while saving keeps its previous checkpoint."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise TrainingError(f"cannot read checkpoint {path} ({type(err).__name__}: {err})") from err


# --- training ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TrainResult:
    output_dir: Path
    best_step: int
    dev: EvalResult
    wall_time_s: float
    report: dict[str, Any]


def _load_base(config: TrainConfig) -> tuple[Any, Any, str]:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    path = resolve_model_path(config.base_model)
    local = Path(path).is_dir()
    if not local and (Path(path).is_absolute() or path.startswith(".") or Path(path).exists()):
        raise ModelLoadError(f"base model folder not found: {path}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        # float32 master weights whatever the folder stores: the shipped reader is fp16 on disk, and
        # training (or continuing training) in fp16 parameters loses the small AdamW updates.
        model = AutoModelForQuestionAnswering.from_pretrained(path, local_files_only=local, dtype=torch.float32)
    except Exception as err:
        raise ModelLoadError(f"cannot load base model {config.base_model!r} ({type(err).__name__}: {err})") from err
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"base model {config.base_model!r} has no fast tokenizer: labels need offsets")
    return model, tokenizer, path


# glibc mallopt parameters (malloc.h). Training frees and re-allocates activation buffers of tens of MB
# every step; by default glibc hands each back to the kernel (mmap/munmap, then page faults on reuse).
# Measured here (1,500 steps, bf16, 32 x 256 windows, 2 cores): keeping them halved the trainer's system
# time. Equivalent to MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_BYTES = 2**31 - 1  # glibc caps it at HEAP_MAX/2 on 64-bit; larger values are refused
_TRIM_THRESHOLD_BYTES = 2**31 - 1
_TOP_PAD_BYTES = 2**30


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed blocks for reuse instead of returning them to the kernel.
    Returns False (and changes nothing) where the C library is not glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    settings = (
        (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES),
        (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES),
        (_M_TOP_PAD, _TOP_PAD_BYTES),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)


def base_training_report(base_path: str | Path) -> dict[str, Any] | None:
    """The base model's own training report when it was trained by this project (a run that continues from a
    shipped reader): the provenance chain the model card prints, stage by stage."""
    path = Path(base_path) / "training.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_report(output_dir: Path, report: dict[str, Any]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / "training.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, output_dir / "training.json")


def _load_sets(paths: Sequence[Path]) -> tuple[list[SquadExample], list[dict[str, Any]]]:
    examples: list[SquadExample] = []
    info = []
    for path in paths:
        loaded = load_squad(path)
        examples.extend(loaded)
        info.append({"path": str(path), "sha256": sha256_file(path), "questions": len(loaded)})
    return examples, info


def run_training(config: TrainConfig, say: Say = lambda _m: None, progress: bool = True) -> TrainResult:
    """Train, evaluate on dev samples every `eval_every` steps (and at the end of each epoch when unset),
    save the best weights (mean F1 over the dev files) as a transformers folder in `output_dir`, then score
    that folder on each whole dev file."""
    import numpy as np
    import tokenizers
    import torch
    import transformers
    from tqdm.auto import tqdm

    from qa.readers.transformers_reader import TransformersReader

    t_start = time.perf_counter()
    keep_freed_memory()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device()
    config = replace(config, precision=resolve_precision(config.precision, device))  # auto: what this device runs
    check_precision(config.precision, device)
    train_set, train_info = _load_sets(config.train_paths)
    replay_info: list[dict[str, Any]] = []
    if config.replay_paths:
        pool, replay_info = _load_sets(config.replay_paths)
        if config.replay_questions > len(pool):
            raise TrainingError(f"--replay-questions {config.replay_questions}: the replay files hold {len(pool)}")
        drawn = dev_subset(range(len(pool)), config.replay_questions, config.seed)
        train_set += [pool[i] for i in drawn]
        first = 0
        for info in replay_info:  # how many of the drawn questions each file gave
            info["drawn"] = sum(first <= i < first + info["questions"] for i in drawn)
            first += info["questions"]
    dev_sets = {str(path): load_squad(path) for path in config.dev_paths}
    for dev in dev_sets.values():
        check_separate(config, train_set, dev)
    data = {
        "train": train_info,
        **({"replay": replay_info} if replay_info else {}),
        "dev": [{"path": path, "sha256": sha256_file(path), "questions": len(dev)} for path, dev in dev_sets.items()],
    }
    fingerprint = hashlib.sha256(
        json.dumps([config.trajectory(), [t["sha256"] for t in train_info + replay_info]], sort_keys=True).encode()
    ).hexdigest()[:16]

    random.seed(config.seed)
    torch.manual_seed(config.seed)  # the fresh qa_outputs head is initialised from this
    model, tokenizer, base_path = _load_base(config)
    model.to(device)
    say(f"base model {config.base_model} ({base_path}) on {device}")

    unanswerable = pair_unanswerable(train_set, config.unanswerable_ratio, config.seed)
    swapped = swap_unanswerable(train_set, config.swap_ratio, config.seed)
    examples = train_set + unanswerable + swapped
    t_feat = time.perf_counter()
    with tqdm(total=len(examples), desc="windows", unit="q", disable=not progress, mininterval=5) as bar:
        features = build_features(
            tokenizer,
            examples,
            config.max_length,
            config.stride,
            config.negative_ratio,
            config.seed,
            bar.update,
            config.hard_negative_share,
        )
    feature_s = time.perf_counter() - t_feat
    if len(features) == 0:
        raise TrainingDataError(f"{config.train_paths[0]}: no training windows")
    windows = {**describe(features), "seconds": round(feature_s, 1), "digest": features_digest(features)}
    say(f"training windows in {feature_s:.1f} s: {windows}")

    lengths = features.lengths
    steps_per_epoch = math.ceil(len(features) / config.batch_size)
    total = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    warmup = int(config.warmup_ratio * total)
    eval_every = config.eval_every or steps_per_epoch
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)]},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    dev_evals = {path: dev_subset(dev, config.dev_sample, config.seed) for path, dev in dev_sets.items()}
    ckpt_path = config.output_dir / CHECKPOINT_DIR / CHECKPOINT_FILE

    step, best_f1, best_step, evals, elapsed_before = 0, -1.0, 0, [], 0.0
    tokens_seen, train_s = 0, 0.0
    if config.resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if state["fingerprint"] != fingerprint:
            raise TrainingError(
                f"checkpoint {ckpt_path} was made with other hyperparameters or training data; "
                "rerun with the same ones, or without --resume to start over"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if device == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"])
        step, best_f1, best_step = int(state["step"]), float(state["best_f1"]), int(state["best_step"])
        evals, elapsed_before = json.loads(state["evals"]), float(state["elapsed_s"])
        tokens_seen, train_s = int(state.get("tokens_seen", 0)), float(state.get("train_s", 0.0))
        say(f"resumed from {ckpt_path} at step {step}/{total}")
    elif config.resume:
        say(f"no checkpoint at {ckpt_path}: starting from the base model")

    def checkpoint() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "fingerprint": fingerprint,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state() if device == "cuda" else None,
                "step": step,
                "best_f1": best_f1,
                "best_step": best_step,
                "evals": json.dumps(evals),
                "elapsed_s": elapsed_before + time.perf_counter() - t_start,
                "tokens_seen": tokens_seen,
                "train_s": train_s,
            },
        )

    def speed() -> dict[str, float]:
        windows_done = min(step, total) * config.batch_size
        return {
            "train_seconds": round(train_s, 1),
            "windows_per_s": round(windows_done / train_s, 2) if train_s else 0.0,
            "tokens_per_s": round(tokens_seen / train_s, 1) if train_s else 0.0,
        }

    base_training = base_training_report(base_path)

    def report(final: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "base_model": config.base_model,
            "base_training": base_training,
            "data": data,
            "hyperparameters": config.trajectory(),
            "evaluation": {
                "dev_sample": {path: len(ex) for path, ex in dev_evals.items()},
                "eval_every": eval_every,
                "max_answer_tokens": config.eval_max_answer_tokens,
                "max_length": config.max_length,
                "stride": config.stride,
                "precision": str(config.precision),
                "metric": "SQuAD-normalised exact match and token F1, top answer over the question's own context; "
                "selection by the mean F1 over the dev files",
            },
            "windows": windows,
            "steps": {"total": total, "per_epoch": steps_per_epoch, "warmup": warmup, "done": step},
            "speed": speed(),
            "evals": evals,
            "best_step": best_step,
            "final_dev": final,
            "wall_time_s": round(elapsed_before + time.perf_counter() - t_start, 1),
            "device": device if device == "cpu" else torch.cuda.get_device_name(),
            "threads": torch.get_num_threads(),
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__,
            },
            "python": platform.python_version(),
        }

    def evaluate_now() -> None:
        nonlocal best_f1, best_step
        model.eval()
        reader = TransformersReader.from_loaded(
            model,
            tokenizer,
            max_answer_tokens=config.eval_max_answer_tokens,
            max_length=config.max_length,
            stride=config.stride,
            precision=config.precision,
        )
        entry: dict[str, Any] = {"step": step, "epoch": round(step / steps_per_epoch, 3)}
        f1s = []
        for path, dev_eval in dev_evals.items():
            result = evaluate_reader(reader, dev_eval, progress, desc=f"dev@{step}")
            entry[Path(path).name] = result.summary()
            f1s.append(result.f1)
        model.train()
        mean_f1 = sum(f1s) / len(f1s)
        entry["mean_f1"] = round(mean_f1, 4)
        entry["elapsed_s"] = round(elapsed_before + time.perf_counter() - t_start, 1)
        entry.update(speed())
        evals.append(entry)
        if mean_f1 > best_f1:
            best_f1, best_step = mean_f1, step
            model.save_pretrained(config.output_dir)
            tokenizer.save_pretrained(config.output_dir)
        _write_report(config.output_dir, report())
        checkpoint()
        say(f"step {step}: dev {entry} (best: step {best_step})")

    model.train()
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=config.precision is Precision.BF16)
    pad_id = tokenizer.pad_token_id or 0
    epoch_batches: dict[int, list[np.ndarray]] = {}
    running = None
    with tqdm(total=total, initial=step, desc="train-reader", unit="step", disable=not progress, mininterval=5) as bar:
        while step < total:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch not in epoch_batches:
                epoch_batches.clear()
                epoch_batches[epoch] = length_grouped_batches(lengths, config.batch_size, config.seed * 1000 + epoch)
            idx = epoch_batches[epoch][pos]
            t_step = time.perf_counter()
            batch = {k: v.to(device) for k, v in features.collate(idx.tolist(), pad_id).items()}
            lr = lr_at(step, total, warmup, config.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            value = loss.item()
            train_s += time.perf_counter() - t_step
            tokens_seen += int(batch["attention_mask"].sum())
            running = value if running is None else 0.95 * running + 0.05 * value
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", lr=f"{lr:.2e}", refresh=False)
            if step % eval_every == 0 or step == total:
                evaluate_now()
            elif step % config.checkpoint_every == 0:
                checkpoint()
    if best_step == 0 and not (config.output_dir / "config.json").exists():
        evaluate_now()  # resumed after the last step with nothing saved

    if not config.final_eval:
        full = report(None)
        _write_report(config.output_dir, full)
        best = next((e for e in evals if e["step"] == best_step), {})
        first = best.get(Path(next(iter(dev_sets))).name, {"exact_match": 0.0, "f1": 0.0, "questions": 0})
        dev_result = EvalResult(first["exact_match"], first["f1"], first["questions"])
        return TrainResult(config.output_dir, best_step, dev_result, full["wall_time_s"], full)

    results = score_saved_reader(
        config.output_dir,
        dev_sets,
        max_answer_tokens=config.eval_max_answer_tokens,
        max_length=config.max_length,
        stride=config.stride,
        precision=config.precision,
        device=device,
        progress=progress,
        say=say,
    )
    final = {"step": best_step, **{name: result.summary() for name, result in results.items()}}
    predictions = {k: v for result in results.values() for k, v in result.predictions.items()}
    first = final[Path(next(iter(dev_sets))).name]
    dev_result = EvalResult(first["exact_match"], first["f1"], first["questions"], predictions)
    full = report(final)
    _write_report(config.output_dir, full)
    (config.output_dir / "dev_predictions.json").write_text(json.dumps(predictions, indent=1) + "\n")
    return TrainResult(config.output_dir, best_step, dev_result, full["wall_time_s"], full)


def score_saved_reader(
    folder: Path,
    dev_sets: dict[str, list[SquadExample]],
    *,
    max_answer_tokens: int,
    max_length: int,
    stride: int,
    precision: Precision | str,
    device: str | None = None,
    progress: bool = False,
    say: Say = lambda _m: None,
) -> dict[str, EvalResult]:
    """The saved weights, loaded back from `folder` as the service loads them (fp32 weights; bf16 autocast only
    when training used it: `qa eval-reader` gives the fp32 figure), scored on each whole dev file (by file
    name: the training report's `final_dev` entries). The reading settings are the run's: its report's
    `evaluation` holds them under these names."""
    from qa.readers.transformers_reader import TransformersReader

    reader = TransformersReader(
        str(folder),
        max_answer_tokens=max_answer_tokens,
        max_length=max_length,
        stride=stride,
        device=device,
        precision=precision,
    )
    reader.warm_up()
    results: dict[str, EvalResult] = {}
    for path, dev in dev_sets.items():
        result = evaluate_reader(reader, dev, progress, desc=f"{Path(path).name} (full)")
        results[Path(path).name] = result
        say(f"{folder}: {Path(path).name} EM {result.exact_match:.4f} F1 {result.f1:.4f}")
    return results


def export_compact(source: str | Path, target: str | Path, half: bool = True) -> Path:
    """Copy a trained reader as a small folder: config, tokenizer and (by default) fp16 safetensors weights,
    which the reader loads back as fp32. Training state and reports are left behind except training.json."""
    import shutil

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    source, target = Path(source), Path(target)
    if not (source / "config.json").exists():
        raise ModelLoadError(f"no trained reader in {source}")
    model = AutoModelForQuestionAnswering.from_pretrained(source, local_files_only=True, dtype=torch.float32)
    if half:
        model = model.half()
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(target)
    if (source / "training.json").exists():
        shutil.copy2(source / "training.json", target / "training.json")
    return target


__all__ = [
    "EvalResult",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "evaluate_reader",
    "export_compact",
    "run_training",
    "score_saved_reader",
]
