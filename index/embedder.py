"""Sentence-transformers embedder: one model load, batched encoding, unit-length vectors.

Vectors are normalised so that FAISS inner product is cosine similarity; the model fingerprint lets an index
refuse a model other than the one it was built with, even one saved under the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.choices import parse_choice
from common.errors import ModelLoadError
from runtimes.models import BUNDLED_MODEL, resolve_model_path, weights_fingerprint

Say = Callable[[str], None]

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from index.onnx_embedder import OnnxEncoder

DEFAULT_BATCH_SIZE = 32


class EmbedderBackend(StrEnum):
    """torch runs sentence-transformers; onnx and onnx-int8 run a locally exported graph
    (`index.onnx_embedder`): same vectors (onnx), or close ones at about 2x the throughput (int8). The product
    default (`Embedder()` and `QA_EMBEDDING_BACKEND`) is onnx-int8; torch is the reference it is measured
    against (docs/performance.md)."""

    TORCH = "torch"
    ONNX = "onnx"
    ONNX_INT8 = "onnx-int8"

    @classmethod
    def built(cls, fingerprint: str) -> str:
        """Which backend produced an index's model fingerprint, in words: int8 marks its fingerprint, while
        torch and onnx compute the same function and share theirs."""
        return cls.ONNX_INT8.value if fingerprint.endswith("-int8") else f"{cls.TORCH.value} (or {cls.ONNX.value})"


# The product's backend: the same seed_dev and COVID-QA retrieval figures as torch at about 2x the encoding
# throughput on 2 cores (docs/performance.md, "Embedding backends").
DEFAULT_BACKEND = EmbedderBackend.ONNX_INT8


class Embedder:
    """Encodes texts with a sentence-transformers model given by local path, hub id or the bundled alias."""

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str = "cpu",
        backend: EmbedderBackend | str | None = None,
        onnx_cache_dir: str | Path | None = None,
    ) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self.backend = (
            DEFAULT_BACKEND if backend is None else parse_choice(EmbedderBackend, backend, "embedding backend")
        )
        self.onnx_cache_dir = onnx_cache_dir
        self._model: SentenceTransformer | None = None
        self._onnx: OnnxEncoder | None = None
        self._fingerprint: str | None = None

    def warm_up(self, say: Say | None = None) -> None:
        """Load the model; `say` hears about slow first-run work (the one-off ONNX export)."""
        if self._model is not None or self._onnx is not None:
            return
        if self.backend is not EmbedderBackend.TORCH:
            onnx = self._onnx_encoder()
            onnx.warm_up(say)
            self._onnx = onnx
            return
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(self.model_name)
        local = Path(path).is_dir()
        if not local and (Path(path).is_absolute() or path.startswith(".")):
            raise ModelLoadError(f"embedding model folder not found: {path}")
        try:
            self._model = SentenceTransformer(path, device=self.device, local_files_only=local)
        except Exception as err:
            raise ModelLoadError(
                f"cannot load embedding model {self.model_name!r} ({type(err).__name__}: {err}); "
                "give a local sentence-transformers folder, or a hub id when online"
            ) from err

    def _onnx_encoder(self) -> OnnxEncoder:
        try:
            from index.onnx_embedder import OnnxEncoder
            from runtimes.onnx_export import DEFAULT_ONNX_CACHE, OnnxPrecision
        except ImportError as err:
            raise ModelLoadError(
                f"the {self.backend.value} embedding backend needs onnxruntime and onnx; reinstall the project "
                "(pip install -e .) or use QA_EMBEDDING_BACKEND=torch"
            ) from err
        precision = OnnxPrecision.INT8 if self.backend is EmbedderBackend.ONNX_INT8 else OnnxPrecision.FP32
        path = Path(resolve_model_path(self.model_name))
        if not path.is_dir():
            raise ModelLoadError(f"the {self.backend.value} backend needs a local model folder; {path} is not one")
        return OnnxEncoder(path, precision, self.batch_size, self.onnx_cache_dir or DEFAULT_ONNX_CACHE)

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            raise RuntimeError("Embedder.warm_up() must run before use (the torch backend's model)")
        return self._model

    @property
    def dimension(self) -> int:
        if self._onnx is not None:
            return self._onnx.dimension
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def max_seq_length(self) -> int:
        if self._onnx is not None:
            return self._onnx.max_seq_length
        return int(self.model.max_seq_length)

    @property
    def fingerprint(self) -> str:
        if self._onnx is not None:
            return self._onnx.fingerprint
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.model)
        return self._fingerprint

    def count_tokens(self, text: str) -> int:
        if self._onnx is not None:
            return self._onnx.count_tokens(text)
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def batch_invariant(self) -> bool:
        """Whether a text's vector is the same alone as in a batch (up to float rounding). Not for int8: its
        activations are quantised with one scale per batch, so a vector depends on its batch-mates (measured:
        cosine 0.986 between a question alone and in a batch of 16)."""
        return self.backend is not EmbedderBackend.ONNX_INT8

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Questions' vectors, each exactly as `encode([text])` gives it: one batched call where the backend
        allows it (torch: 2.5x faster for 16), one call per question for int8 (batching saves little there)."""
        if self.batch_invariant or len(texts) <= 1:
            return self.encode(texts)
        return np.vstack([self.encode([t]) for t in texts])

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.encode(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self.model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)
