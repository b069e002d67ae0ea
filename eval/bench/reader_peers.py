"""The project's transformers reader against Haystack's extractive reader: the same model folder, the same passages.

For each question of a gold set (seed_dev by default) the passages are the ones the service reads: the built-in
corpus pipeline with the default settings retrieves (`QAPipeline.retrieve`, top_k and retriever as configured)
and expands them (`QAPipeline.expand_passages`), once. Both readers then read exactly those chunk texts:

- ours in this process: `TransformersReader.run` as the pipeline built it (its `max_answers` is the pipeline's,
  `max_answers * 4`);
- Haystack's `ExtractiveReader` (Haystack 3: `TransformersExtractiveReader` from transformers-haystack) in its own
  environment, `var/peers/haystack` (`scripts/peers/setup.sh haystack`), through
  `scripts/peers/haystack_reader_bench.py`, which reads the passage texts from JSON and writes JSON back.

Both warm up (model load, then `warmup` questions untimed) and then time each question's reader call alone
(no retrieval), with the same torch thread count, one thread count after the other, each side after the other.

Agreement, per question: the best answer's text after whitespace normalisation, and the abstention. Ours
abstains when it has no span or its best span scores below the pipeline's threshold for that reader (the
model's calibrated `min_answer_score`, or 0.5 uncalibrated) before any retrieval fusion, which Haystack has
not; Haystack abstains when its no-answer outranks its best span. What the two do differently is `DIFFERENCES`.

Ratios are ours / theirs: below 1 is faster.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.bench.common import REPO, SEED_DEV, load_average, percentiles, ratio

HAYSTACK_PYTHON = REPO / "var" / "peers" / "haystack" / "bin" / "python"
HAYSTACK_SCRIPT = REPO / "scripts" / "peers" / "haystack_reader_bench.py"
DEFAULT_GOLD = SEED_DEV
DEFAULT_QUESTIONS = 45
DEFAULT_WARMUP = 3
DIFFERENCES = (
    "span score: ours p(start) * p(end), softmaxes over each window's context plus CLS (SQuAD 2.0 null); Haystack "
    "sigmoid(0.1 * (start + end logit)) per span, no softmax, CLS never read",
    "no-answer: ours the model's CLS score, abstaining below the calibrated min_answer_score; Haystack 1 - best "
    "span score (top_k=1), abstaining when that outranks the span, i.e. below 0.5",
    "model inputs: ours input_ids, token_type_ids and attention_mask; Haystack input_ids and attention_mask only "
    "(a BERT model then sees the passage as segment 0)",
    "answer length: ours at most max_answer_tokens (30) tokens; Haystack any span within the window",
    "candidates: ours the top 20 starts x top 20 ends per window; Haystack the top 20 (start, end) pairs per window",
    "truncation: ours only_second (the question kept whole, cut at a quarter of the window); Haystack longest_first",
    "duplicates: ours one answer per (document, offsets); Haystack drops spans overlapping a better one by >1%",
)


def normalise(text: str | None) -> str | None:
    """The answer text compared: whitespace runs collapsed and ends stripped; None stays None."""
    return None if text is None else " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Outcome:
    """One reader's result for one question."""

    id: str
    ms: float
    text: str | None
    score: float | None
    abstained: bool

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Outcome:
        return cls(str(obj["id"]), float(obj["ms"]), obj.get("text"), obj.get("score"), bool(obj["abstained"]))

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def agreement(ours: Sequence[Outcome], theirs: Sequence[Outcome], keep: int = 10) -> dict[str, Any]:
    """Counts over the questions both answered (matched by id): `same_answer` is both abstaining, or both
    answering with the same normalised text; `same_best_span` compares the best span's text whatever the
    abstention; `same_abstention` the abstentions alone. `disagreements`: the first `keep` that differ."""
    by_id = {o.id: o for o in theirs}
    pairs = [(o, by_id[o.id]) for o in ours if o.id in by_id]
    same_answer = same_span = same_abstention = both_answered = both_answered_same = 0
    differ: list[dict[str, Any]] = []
    for a, b in pairs:
        span = normalise(a.text) == normalise(b.text)
        abst = a.abstained == b.abstained
        answer = abst and (a.abstained or span)
        same_span += span
        same_abstention += abst
        same_answer += answer
        if not a.abstained and not b.abstained:
            both_answered += 1
            both_answered_same += span
        if not answer and len(differ) < keep:
            differ.append(
                {
                    "id": a.id,
                    "ours": None if a.abstained else a.text,
                    "ours_best_span": a.text,
                    "haystack": None if b.abstained else b.text,
                    "haystack_best_span": b.text,
                }
            )
    return {
        "n": len(pairs),
        "same_answer": same_answer,
        "same_best_span": same_span,
        "same_abstention": same_abstention,
        "both_answered": both_answered,
        "both_answered_same_text": both_answered_same,
        "ours_abstained": sum(a.abstained for a, _ in pairs),
        "haystack_abstained": sum(b.abstained for _, b in pairs),
        "disagreements": differ,
    }


def latency_summary(ours_ms: Sequence[float], theirs_ms: Sequence[float]) -> dict[str, Any]:
    """Per-question percentiles of each side and ours / theirs at p50 and p95."""
    ours, theirs = percentiles(ours_ms), percentiles(theirs_ms)
    return {
        "ours_ms": ours,
        "haystack_ms": theirs,
        "ours_over_theirs": {k: ratio(ours.get(k, float("nan")), theirs.get(k, float("nan"))) for k in ("p50", "p95")},
    }


def compare(threads: int, ours: Sequence[Outcome], theirs: Sequence[Outcome]) -> dict[str, Any]:
    return {
        "threads": threads,
        **latency_summary([o.ms for o in ours], [o.ms for o in theirs]),
        "agreement": agreement(ours, theirs),
    }


def format_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """One line per thread count: both sides' p50/p95, the ratios and the agreement."""
    head = "| threads | ours p50 / p95 ms | Haystack p50 / p95 ms | ours/theirs p50 / p95 | same answer | same span |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r.get('threads', '?')} | {_p(r.get('ours_ms'))} | {r['error'][:60]} | | | |")
            continue
        ag, q = r["agreement"], r["ours_over_theirs"]
        lines.append(
            f"| {r['threads']} | {_p(r['ours_ms'])} | {_p(r['haystack_ms'])} | {q['p50']} / {q['p95']} "
            f"| {ag['same_answer']}/{ag['n']} | {ag['same_best_span']}/{ag['n']} |"
        )
    return "\n".join(lines)


def _p(ms: Mapping[str, Any] | None) -> str:
    return f"{ms['p50']:.1f} / {ms['p95']:.1f}" if ms and "p50" in ms else "-"


# --- the measurement (needs the pipeline, the model and, for Haystack, var/peers/haystack) ---


def check_model_folder(model: Path) -> None:
    missing = [f for f in ("config.json",) if not (model / f).is_file()]
    weights = list(model.glob("*.safetensors")) + list(model.glob("pytorch_model*.bin"))
    if missing or not weights:
        raise FileNotFoundError(
            f"{model}: not a model folder (needs config.json, weights and a tokenizer); train one with "
            "`qa train-reader` or give --model"
        )


def _pipeline(model: Path) -> Any:
    """The built-in corpus pipeline with the default settings (as `qa bench latency` builds it), reading with
    the transformers reader over `model`."""
    from eval.bench.latency import ensure_bench_index
    from qa.pipeline import QAPipeline
    from qa.readers.base import ReaderKind
    from qa.settings import Settings
    from runtimes.onnx_export import DEFAULT_ONNX_CACHE

    backend = Settings(_env_file=None).embedding_backend.value
    settings = Settings(
        _env_file=None,
        index_dir=ensure_bench_index(backend),
        embedding_backend=backend,
        onnx_cache_dir=DEFAULT_ONNX_CACHE,
        reader=ReaderKind.TRANSFORMERS,
        reader_model=str(model),
    )
    pipe = QAPipeline(settings)
    pipe.warm_up()
    return pipe


def _questions(gold: Path, n: int) -> list[tuple[str, str]]:
    from eval.datasets import load_gold

    return [(ex.id, ex.question) for ex in load_gold(gold).examples[:n]]


def _time_ours(
    reader: Any, inputs: Sequence[tuple[str, str, list[Any]]], documents: Any, max_answers: int, min_score: float
) -> list[Outcome]:
    out: list[Outcome] = []
    for _id, q, ps in inputs:
        t0 = time.perf_counter()
        answers = reader.run(q, ps, documents, max_answers)
        ms = (time.perf_counter() - t0) * 1000
        best = answers[0] if answers else None
        out.append(
            Outcome(
                _id,
                round(ms, 3),
                best.text if best else None,
                round(best.score, 6) if best else None,
                best is None or best.score < min_score,
            )
        )
    return out


def run_haystack(input_path: Path, model: Path, threads: int, warmup: int, out: Path) -> dict[str, Any]:
    if not HAYSTACK_PYTHON.is_file():
        return {"error": f"no environment {HAYSTACK_PYTHON.parent.parent}: run scripts/peers/setup.sh haystack"}
    cmd = [str(HAYSTACK_PYTHON), str(HAYSTACK_SCRIPT), "--input", str(input_path), "--model", str(model)]
    cmd += ["--threads", str(threads), "--warmup", str(warmup), "--out", str(out)]
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0 or not out.is_file():
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}"}
    return json.loads(out.read_text(encoding="utf-8"))


def bench_reader_peers(
    model: Path,
    gold: Path = DEFAULT_GOLD,
    n_questions: int = DEFAULT_QUESTIONS,
    threads: Sequence[int] = (1, 2),
    warmup: int = DEFAULT_WARMUP,
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    import torch

    from qa.readers.base import ReaderKind

    model = Path(model).resolve()
    check_model_folder(model)
    pipe = _pipeline(model)
    reader = pipe.reader(ReaderKind.TRANSFORMERS)
    settings = pipe.settings
    min_score = pipe.min_score(reader)
    max_answers = settings.max_answers * 4  # what QAPipeline.read asks the reader for
    documents = pipe.index.documents
    inputs = []
    for qid, q in _questions(gold, n_questions):
        passages = pipe.expand_passages(pipe.retrieve(q, settings.top_k, settings.retriever))
        inputs.append((qid, q, [p for p in passages if p.chunk.text.strip()]))
    say(f"{len(inputs)} questions, {sum(len(ps) for *_, ps in inputs)} passages in all; model {model}")

    previous = torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    haystack_meta: dict[str, Any] = {}
    per_question: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qa-bench-reader-peers-") as tmp:
        input_path = Path(tmp) / "questions.json"
        payload = [{"id": i, "question": q, "passages": [p.chunk.text for p in ps]} for i, q, ps in inputs]
        input_path.write_text(json.dumps({"questions": payload}, ensure_ascii=False), encoding="utf-8")
        try:
            for t in threads:
                torch.set_num_threads(t)
                for _id, q, ps in inputs[:warmup]:
                    reader.run(q, ps, documents, max_answers)
                ours = _time_ours(reader, inputs, documents, max_answers, min_score)
                load_ours = load_average()
                theirs_json = run_haystack(input_path, model, t, warmup, Path(tmp) / f"haystack-{t}.json")
                load_theirs = load_average()
                row: dict[str, Any]
                if "error" in theirs_json:
                    row = {"threads": t, "ours_ms": percentiles([o.ms for o in ours]), "error": theirs_json["error"]}
                else:
                    theirs = [Outcome.from_json(x) for x in theirs_json["questions"]]
                    row = compare(t, ours, theirs)
                    haystack_meta = {k: v for k, v in theirs_json.items() if k != "questions"}
                    per_question[f"haystack_threads_{t}"] = theirs_json["questions"]
                row["load_average_after"] = {"ours": load_ours, "haystack": load_theirs}
                per_question[f"ours_threads_{t}"] = [o.to_json() for o in ours]
                rows.append(row)
                say(format_table([row]).splitlines()[-1] + f" load {load_theirs}")
        finally:
            torch.set_num_threads(previous)
    return {
        "model": str(model),
        "gold": str(gold),
        "questions": len(inputs),
        "warmup_questions": min(warmup, len(inputs)),
        "passages_per_question": percentiles([float(len(ps)) for *_, ps in inputs]),
        "ours": {
            "reader": type(reader).__name__,
            "backend": str(settings.reader_backend.value),
            "precision": str(reader.active_precision),
            "max_length": reader.max_length,
            "stride": reader.stride,
            "batch_size": reader.batch_size,
            "top_n": reader.top_n,
            "max_answer_tokens": reader.max_answer_tokens,
            "max_answers": max_answers,
            "min_score": min_score,
            "calibrated": reader.calibration is not None,
            "retrieval": {
                "top_k": settings.top_k,
                "retriever": settings.retriever.value,
                "expand_documents": settings.expand_documents,
                "embedding_backend": settings.embedding_backend.value,
            },
        },
        "haystack": haystack_meta,
        "differences": list(DIFFERENCES),
        "results": rows,
        "per_question": per_question,
    }
