"""ONNX Runtime for the extractive reader's model call: the same start/end logits as torch.

Only the model call moves: `TransformersReader` still tokenises, cuts windows and decodes spans itself, so the
torch and ONNX backends share every line but the forward pass. The export follows the encoder's recipe
(`runtimes.onnx_export`): `torch.onnx.export` of the local folder's `AutoModelForQuestionAnswering` with dynamic
batch and sequence axes, fused by ONNX Runtime's transformer optimiser, plus a per-channel int8 twin. It is
cached under a digest of the folder's files (with the task "reader", so it never collides with an encoder
export), and `meta.json` records how often int8's best span equals fp32's on a few check questions, and
`OnnxQAModel` refuses int8 unless that is every one of them (the reader offers no int8 backend yet).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.errors import ModelLoadError
from index.onnx_embedder import open_session
from runtimes.onnx_export import (
    DEFAULT_ONNX_CACHE,
    EXPORT_VERSION,
    FP32_NAME,
    INT8_NAME,
    META_NAME,
    OnnxPrecision,
    cache_entry,
    file_digests,
    optimise_and_quantise,
    prepare_cache,
    publish_entry,
    trace_to_onnx,
)

if TYPE_CHECKING:
    import onnxruntime

READER_TASK = "reader"
OUTPUT_NAMES = ["start_logits", "end_logits"]
CHECK_PAIRS = (
    (
        "What was the median overall survival with STRIDE?",
        "The median overall survival was 16.43 months with STRIDE versus 13.77 months with sorafenib.",
    ),
    (
        "Which receptor does SARS-CoV-2 bind?",
        "SARS-CoV-2 binds the ACE2 receptor through the receptor-binding domain of its spike glycoprotein.",
    ),
    (
        "What was the hazard ratio?",
        "Patients were randomised 1:1 to receive the drug (n = 393) or placebo; the hazard ratio was 0.78 "
        "(95% CI 0.65-0.93).",
    ),
    (
        "Which kinases does sorafenib inhibit?",
        "Sorafenib is a multikinase inhibitor of VEGFR, PDGFR and RAF kinases approved for hepatocellular carcinoma.",
    ),
    (
        "Do desmoid tumors metastasize?",
        "Desmoid tumors are locally aggressive soft-tissue neoplasms that do not metastasize.",
    ),
    (
        "How long is the incubation period of COVID-19?",
        "The median incubation period was estimated at 5.1 days, and 97.5% of patients developed symptoms "
        "within 11.5 days of infection.",
    ),
)


@dataclass(frozen=True, slots=True)
class ReaderExportInfo:
    """What a reader export's `meta.json` holds."""

    input_names: list[str]
    num_heads: int
    hidden_size: int
    int8_same_best_span: float | None = None
    """Share of `CHECK_PAIRS` whose best span under int8 equals fp32's."""
    export_version: int = EXPORT_VERSION
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> ReaderExportInfo:
        return cls(**json.loads((folder / META_NAME).read_text(encoding="utf-8")))


def _best_span_per_pair(session: onnxruntime.InferenceSession, feed: dict[str, np.ndarray], context: Any) -> list:
    start, end = session.run(OUTPUT_NAMES, feed)
    out = []
    for i, allowed in enumerate(context):
        s = np.where(allowed, start[i], -np.inf)
        e = np.where(allowed, end[i], -np.inf)
        scores = s[:, None] + e[None, :]
        scores[np.tril_indices(len(s), -1)] = -np.inf  # end before start
        out.append(np.unravel_index(int(np.argmax(scores)), scores.shape))
    return out


def export_reader(
    model_path: str | Path, cache_dir: str | Path = DEFAULT_ONNX_CACHE, say: Callable[[str], None] | None = None
) -> Path:
    """Export a local extractive QA folder (fp32 and int8) unless a cache entry for its exact files exists."""
    model_path = Path(model_path)
    final = cache_entry(model_path, cache_dir, READER_TASK)
    if (final / META_NAME).is_file():
        return final
    prepare_cache(final)
    if say is not None:
        say(
            f"exporting the reader model in {model_path} to ONNX (fp32 and int8) in {final}: once per model and runtime"
        )
    t0 = time.perf_counter()
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
        model = AutoModelForQuestionAnswering.from_pretrained(
            str(model_path), local_files_only=True, dtype=torch.float32
        )
    except Exception as err:
        raise ModelLoadError(f"cannot load {model_path} for ONNX export ({type(err).__name__}: {err})") from err
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    questions, contexts = (list(x) for x in zip(*CHECK_PAIRS, strict=True))
    sample = tokenizer(questions, contexts, padding=True, return_tensors="pt")
    feed = {n: sample[n].numpy().astype(np.int64) for n in names}
    in_context = [[s == 1 for s in sample.sequence_ids(i)] for i in range(len(questions))]

    def build(tmp: Path) -> None:
        inputs = {n: sample[n][:2] for n in names}
        trace_to_onnx(model, inputs, OUTPUT_NAMES, lambda o: (o.start_logits, o.end_logits), tmp / FP32_NAME)
        cfg = model.config
        optimise_and_quantise(tmp, int(cfg.num_attention_heads), int(cfg.hidden_size))
        ref = _best_span_per_pair(open_session(tmp / FP32_NAME), feed, in_context)
        q = _best_span_per_pair(open_session(tmp / INT8_NAME), feed, in_context)
        info = ReaderExportInfo(
            input_names=names,
            num_heads=int(cfg.num_attention_heads),
            hidden_size=int(cfg.hidden_size),
            int8_same_best_span=round(sum(a == b for a, b in zip(ref, q, strict=True)) / len(ref), 6),
            files=file_digests(tmp),
        )
        (tmp / META_NAME).write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")

    publish_entry(final, build)
    if say is not None:
        say(f"reader ONNX export done in {time.perf_counter() - t0:.0f} s")
    return final


class OnnxQAModel:
    """An exported QA graph: token arrays in, (start_logits, end_logits) out, as float32 numpy arrays."""

    def __init__(
        self,
        model_path: str | Path,
        precision: OnnxPrecision | str = OnnxPrecision.FP32,
        cache_dir: str | Path = DEFAULT_ONNX_CACHE,
        threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.precision = OnnxPrecision(precision)
        self.cache_dir = Path(cache_dir)
        self.threads = threads
        self._session: onnxruntime.InferenceSession | None = None
        self._info: ReaderExportInfo | None = None

    def warm_up(self, say: Callable[[str], None] | None = None) -> None:
        if self._session is not None:
            return
        folder = export_reader(self.model_path, self.cache_dir, say)
        info = ReaderExportInfo.read(folder)
        if self.precision is OnnxPrecision.INT8 and info.int8_same_best_span != 1.0:
            raise ModelLoadError(
                f"the int8 export of {self.model_path} picks fp32's best span on only {info.int8_same_best_span:.0%} "
                "of the check questions; use the 'onnx' reader backend for this model"
            )
        graph = folder / (INT8_NAME if self.precision is OnnxPrecision.INT8 else FP32_NAME)
        self._session, self._info = open_session(graph, self.threads), info

    @property
    def input_names(self) -> list[str]:
        if self._info is None:
            raise RuntimeError("OnnxQAModel.warm_up() must run before use")
        return self._info.input_names

    def __call__(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if self._session is None:
            raise RuntimeError("OnnxQAModel.warm_up() must run before use")
        feed = {n: inputs[n].astype(np.int64, copy=False) for n in self.input_names}
        start, end = self._session.run(OUTPUT_NAMES, feed)
        return start, end
