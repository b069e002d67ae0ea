"""Export a sentence-transformers model folder to ONNX (fp32 and per-channel int8), cached on disk.

Why our own export: sentence-transformers' ONNX backend needs optimum-onnx, which does not install next to
transformers 5; `torch.onnx.export` of the transformer alone does, and pooling plus normalisation are cheap in
numpy. The graph is then fused by ONNX Runtime's transformer optimiser (attention, LayerNorm, GELU), and the
int8 variant is quantised from the fused graph with one scale per output channel: the default per-tensor
scales were reported to cost too much accuracy on MiniLM (mean cosine to torch about 0.92; per channel 0.99).

The cache folder is keyed by a digest of the model folder's files and the ONNX Runtime version (the fused graph
uses its contrib operators), so a changed model or runtime gets a fresh export and nothing is ever trusted by
name. `meta.json` records the torch weights fingerprint (the identity an index stores) and the int8 check.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import ModelLoadError
from runtimes.models import files_digest


def user_onnx_cache() -> Path:
    """The per-user export cache shared by every index: $XDG_CACHE_HOME/biomed-qa/onnx, else
    ~/.cache/biomed-qa/onnx (a relative XDG_CACHE_HOME is invalid by the XDG spec and ignored), else a per-user
    folder in the temporary directory when there is no home."""
    import tempfile

    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        base = Path(xdg)
    else:
        try:
            base = Path.home() / ".cache"
        except RuntimeError:  # no HOME and no passwd entry
            base = Path(tempfile.gettempdir()) / f"biomed-qa-cache-{os.getuid()}"
    return base / "biomed-qa" / "onnx"


DEFAULT_ONNX_CACHE = user_onnx_cache()
"""Where components built without a cache folder export to (the settings' default, as the process started)."""
EXPORT_VERSION = 1  # bump when the export recipe changes: old cache entries are then ignored
META_NAME = "meta.json"
FP32_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
MIN_INT8_COSINE = 0.99
"""An int8 graph is refused when its mean cosine to the fp32 graph on the check sentences is below this."""

CHECK_SENTENCES = (
    "The median overall survival was 16.43 months with STRIDE versus 13.77 months with sorafenib.",
    "Sorafenib is a multikinase inhibitor of VEGFR, PDGFR and RAF kinases approved for hepatocellular carcinoma.",
    "Desmoid tumors are locally aggressive soft-tissue neoplasms that do not metastasize.",
    "What is the boiling point of tungsten at sea level?",
    "Patients were randomised 1:1 to receive the drug (n = 393) or placebo; the hazard ratio was 0.78 (95% CI 0.65-0.93).",
    "SARS-CoV-2 binds the ACE2 receptor through the receptor-binding domain of its spike glycoprotein.",
    "Which kinases does lenvatinib inhibit?",
    "Mean pooling averages token vectors weighted by the attention mask.",
)


class OnnxPrecision(StrEnum):
    FP32 = "fp32"
    INT8 = "int8"


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """What `meta.json` holds about one cache entry."""

    weights_fingerprint: str
    dimension: int
    max_seq_length: int
    num_heads: int
    hidden_size: int
    input_names: list[str]
    int8_cosine_mean: float | None = None
    int8_cosine_min: float | None = None
    export_version: int = EXPORT_VERSION
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> ExportInfo:
        return cls(**json.loads((folder / META_NAME).read_text(encoding="utf-8")))


def folder_digest(model_path: Path, task: str = "") -> str:
    """sha256 over the model folder's file names and contents (skipping docs), plus the runtime version; `task`
    (e.g. "reader") keeps two different exports of one folder apart, and leaves the encoder's keys unchanged."""
    import onnxruntime

    prefix = f"export-v{EXPORT_VERSION}|onnxruntime-{onnxruntime.__version__}" + (f"|{task}" if task else "")
    files = [
        p
        for p in sorted(model_path.rglob("*"))
        if p.is_file() and p.suffix.lower() != ".md" and not p.name.startswith(".")
    ]
    return files_digest(files, model_path, prefix)


def cache_entry(model_path: str | Path, cache_dir: str | Path = DEFAULT_ONNX_CACHE, task: str = "") -> Path:
    return Path(cache_dir) / folder_digest(Path(model_path), task)


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling followed by L2 normalisation, in numpy."""
    mask = attention_mask[..., None].astype(hidden.dtype)
    summed = (hidden * mask).sum(axis=1)
    pooled = summed / np.clip(mask.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def trace_to_onnx(
    model: Any,
    inputs: dict[str, Any],
    output_names: list[str],
    pick: Callable[[Any], Any],
    out: Path,
) -> None:
    """Trace `pick(model(**inputs))` to ONNX with dynamic batch and sequence axes on every input and output.

    `inputs` is ordered as the graph's inputs; `pick` turns the model's output object into a tensor or a tuple
    of tensors named by `output_names`."""
    import torch

    names = list(inputs)

    class ByKeyword(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> Any:
            return pick(self.inner(**dict(zip(names, args, strict=True))))

    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, *output_names]}
    model.eval()
    # The tracer warns about Python-level branches in the attention code; they take the same path for every
    # input shape (checked: fp32 matches torch to cosine 1.0 at any length), so the warnings are only noise.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            ByKeyword(model),
            tuple(inputs.values()),
            str(out),
            input_names=names,
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )


def _export_fp32(st_model: Any, out: Path) -> tuple[list[str], int, int]:
    """Trace the transformer (ids, mask, type ids -> last_hidden_state)."""
    transformer = getattr(st_model[0], "auto_model", None) or st_model[0].model
    tokenizer = st_model.tokenizer
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    sample = tokenizer(list(CHECK_SENTENCES[:2]), padding=True, return_tensors="pt")
    trace_to_onnx(transformer, {n: sample[n] for n in names}, ["last_hidden_state"], lambda o: o.last_hidden_state, out)
    cfg = transformer.config
    return names, int(cfg.num_attention_heads), int(cfg.hidden_size)


def optimise_and_quantise(folder: Path, num_heads: int, hidden_size: int) -> None:
    """Fuse `model.onnx` in place, then write its per-channel int8 twin beside it."""
    _optimise(folder / FP32_NAME, num_heads, hidden_size)
    _quantise(folder / FP32_NAME, folder / INT8_NAME)


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of each graph in an entry, for `meta.json`."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.onnx"))}


def prepare_cache(final: Path) -> None:
    """Create the cache folder, or say which setting moves it."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelLoadError(
            f"cannot create the ONNX export cache {final.parent} ({err.strerror or err}); "
            "set QA_ONNX_CACHE_DIR to a writable folder"
        ) from err


def publish_entry(final: Path, build: Callable[[Path], None]) -> None:
    """Run `build` in a temporary sibling folder (it must write `meta.json` last) and rename it into place, so
    a concurrent or interrupted export never leaves a half-written entry that a later run would trust."""
    tmp = final.parent / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process published the same entry first: theirs is as good as ours
            if not (final / META_NAME).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _optimise(path: Path, num_heads: int, hidden_size: int) -> None:
    """Fuse attention, LayerNorm and GELU in place; the graph computes the same function."""
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(path), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=1)
    model.save_model_to_file(str(path))


def _quantise(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The fused operators have no shape inference in onnx; their outputs are float32.
    quantize_dynamic(
        str(src),
        str(dst),
        per_channel=True,
        reduce_range=False,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _run_graph(path: Path, st_model: Any, names: list[str], texts: tuple[str, ...]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    enc = st_model.tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="np")
    feed = {n: enc[n].astype(np.int64) for n in names}
    return mean_pool(session.run(None, feed)[0], enc["attention_mask"])


def export_model(
    model_path: str | Path, cache_dir: str | Path = DEFAULT_ONNX_CACHE, say: Callable[[str], None] | None = None
) -> Path:
    """Export (fp32 and int8) into the cache unless an entry for these exact files exists; returns its folder.

    Offline: it reads only the local model folder. Written under a temporary name and renamed into place, so a
    concurrent or interrupted export never leaves a half-written entry that a later run would trust. `say` is
    told before the export starts: it is the slow part of a fresh machine's first start.
    """
    model_path = Path(model_path)
    final = cache_entry(model_path, cache_dir)
    if (final / META_NAME).is_file():
        return final
    prepare_cache(final)
    if say is not None:
        say(
            f"exporting the embedding model in {model_path} to ONNX (fp32 and int8) in {final}: once per model "
            "and runtime, 10-30 s on 2 cores"
        )
    t0 = time.perf_counter()
    from sentence_transformers import SentenceTransformer

    from runtimes.models import weights_fingerprint

    try:
        st_model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    except Exception as err:
        raise ModelLoadError(f"cannot load {model_path} for ONNX export ({type(err).__name__}: {err})") from err
    modules = [type(m).__name__ for m in st_model]
    pooling = st_model[1].get_config_dict() if len(modules) > 1 else {}
    mean = pooling.get("pooling_mode") == "mean" or bool(pooling.get("pooling_mode_mean_tokens"))
    if modules[:2] != ["Transformer", "Pooling"] or not mean:
        raise ModelLoadError(
            f"ONNX export supports Transformer + mean Pooling (+ Normalize) models; {model_path} has {modules}"
        )
    infos: list[ExportInfo] = []

    def build(tmp: Path) -> None:
        names, heads, hidden = _export_fp32(st_model, tmp / FP32_NAME)
        optimise_and_quantise(tmp, heads, hidden)
        ref = _run_graph(tmp / FP32_NAME, st_model, names, CHECK_SENTENCES)
        q = _run_graph(tmp / INT8_NAME, st_model, names, CHECK_SENTENCES)
        cos = (ref * q).sum(axis=1)
        info = ExportInfo(
            weights_fingerprint=weights_fingerprint(st_model),
            dimension=int(st_model.get_embedding_dimension() or hidden),
            max_seq_length=int(st_model.max_seq_length),
            num_heads=heads,
            hidden_size=hidden,
            input_names=names,
            int8_cosine_mean=round(float(cos.mean()), 6),
            int8_cosine_min=round(float(cos.min()), 6),
            files=file_digests(tmp),
        )
        (tmp / META_NAME).write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")
        infos.append(info)

    publish_entry(final, build)
    info = infos[0]
    if say is not None:
        say(f"ONNX export done in {time.perf_counter() - t0:.0f} s (int8 mean cosine to fp32 {info.int8_cosine_mean})")
    return final
