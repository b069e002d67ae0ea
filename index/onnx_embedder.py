"""ONNX Runtime encoder for sentence-transformers models: the same vectors as torch, faster on CPU.

`Embedder(backend="onnx" | "onnx-int8")` delegates to this class; it exports the model folder once (see
`runtimes.onnx_export`) and then needs neither torch nor sentence-transformers to encode. Tokenisation uses the
folder's own `tokenizer.json` with sentence-transformers' settings (truncation at the model's
`max_seq_length`, padding to the longest text of a batch), and texts are batched by length as
sentence-transformers does, so padding costs little.

Fingerprints: the fp32 graph computes the torch model's function (cosine 1.0 to 1e-6), so it reports the
torch weights fingerprint and an index built with either backend serves the other. The int8 graph is an
approximation (cosine about 0.99): its fingerprint is the weights fingerprint with `-int8` appended, so an index
records which of the two built it and refuses the other by name instead of mixing them silently.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.errors import ModelLoadError
from runtimes.onnx_export import (
    DEFAULT_ONNX_CACHE,
    FP32_NAME,
    INT8_NAME,
    MIN_INT8_COSINE,
    ExportInfo,
    OnnxPrecision,
    export_model,
    mean_pool,
)

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer


def default_threads() -> int:
    """Follow torch's intra-op setting when torch is loaded (`qa serve` sets it to one per question), so one
    knob sizes every model's thread pool; otherwise let ONNX Runtime use one thread per core (0)."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else 0


def open_session(graph: Path, threads: int | None = None) -> onnxruntime.InferenceSession:
    """A CPU session with every graph optimisation on and `threads` intra-op threads (None: `default_threads`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = default_threads() if threads is None else threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """Encodes with an exported ONNX graph; the API mirrors what `Embedder` needs."""

    def __init__(
        self,
        model_path: str | Path,
        precision: OnnxPrecision | str = OnnxPrecision.FP32,
        batch_size: int = 32,
        cache_dir: str | Path = DEFAULT_ONNX_CACHE,
        threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.precision = OnnxPrecision(precision)
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir)
        self.threads = threads
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._counter: Tokenizer | None = None
        self._info: ExportInfo | None = None

    def warm_up(self, say: Callable[[str], None] | None = None) -> None:
        """Export the model on first use (`say` is told, since it takes a while), then open the graph."""
        if self._session is not None:
            return
        from tokenizers import Tokenizer

        if not (self.model_path / "tokenizer.json").is_file():
            raise ModelLoadError(f"{self.model_path}: the ONNX backend needs a local model folder with tokenizer.json")
        folder = export_model(self.model_path, self.cache_dir, say)
        info = ExportInfo.read(folder)
        if self.precision is OnnxPrecision.INT8 and (info.int8_cosine_mean or 0.0) < MIN_INT8_COSINE:
            raise ModelLoadError(
                f"the int8 export of {self.model_path} agrees with fp32 only to cosine {info.int8_cosine_mean} "
                f"(needs {MIN_INT8_COSINE}); use the 'onnx' backend for this model"
            )
        graph = folder / (INT8_NAME if self.precision is OnnxPrecision.INT8 else FP32_NAME)
        session = open_session(graph, self.threads)

        tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
        counter = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
        counter.no_truncation()
        counter.no_padding()
        # The file's own settings (MiniLM's: truncate and pad to 128) are not what sentence-transformers uses.
        tokenizer.enable_truncation(max_length=info.max_seq_length)
        pad_id = tokenizer.token_to_id(self._pad_token()) or 0
        tokenizer.enable_padding(pad_id=pad_id, pad_token=self._pad_token())
        self._tokenizer, self._counter, self._info, self._session = tokenizer, counter, info, session

    def _pad_token(self) -> str:
        path = self.model_path / "special_tokens_map.json"
        if path.is_file():
            pad = json.loads(path.read_text(encoding="utf-8")).get("pad_token")
            if isinstance(pad, dict):
                pad = pad.get("content")
            if isinstance(pad, str):
                return pad
        return "[PAD]"

    @property
    def info(self) -> ExportInfo:
        if self._info is None:
            raise RuntimeError("OnnxEncoder.warm_up() must run before use")
        return self._info

    @property
    def dimension(self) -> int:
        return self.info.dimension

    @property
    def max_seq_length(self) -> int:
        return self.info.max_seq_length

    @property
    def fingerprint(self) -> str:
        fp = self.info.weights_fingerprint
        return f"{fp}-int8" if self.precision is OnnxPrecision.INT8 else fp

    def count_tokens(self, text: str) -> int:
        assert self._counter is not None, "OnnxEncoder.warm_up() must run before use"
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        assert self._tokenizer is not None and self._session is not None
        encodings = self._tokenizer.encode_batch(texts)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        columns = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feed = {name: columns[name] for name in self.info.input_names}
        hidden = self._session.run(None, feed)[0]
        return mean_pool(hidden, mask)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self.warm_up()
        if len(texts) == 1:
            return self._encode_batch(texts)
        # Longest first, as sentence-transformers batches: similar lengths share a batch and pad little.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i in range(0, len(texts), self.batch_size):
            idx = order[i : i + self.batch_size]
            out[idx] = self._encode_batch([texts[j] for j in idx])
        return out
