"""All runtime settings in one place: defaults < settings file < environment (QA_*) < CLI flags.

Settings are read at the edges (CLI, service start-up) and handed to components as plain arguments, so the
library itself never reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from index.chunking import ChunkingConfig
from index.dense import DenseIndexType
from index.embedder import DEFAULT_BACKEND, DEFAULT_BATCH_SIZE, EmbedderBackend
from index.retriever import (
    DEFAULT_DENSE_WEIGHT,
    DEFAULT_FUSION_CANDIDATES,
    DEFAULT_FUSION_METHOD,
    DEFAULT_LEXICAL_WEIGHT,
    DEFAULT_RRF_K,
    FusionConfig,
    FusionMethod,
    RetrievalMode,
)
from index.store import IndexConfig
from qa.readers.base import ReaderKind
from qa.readers.precision import Precision
from qa.readers.transformers_reader import BUNDLED_READER_DIR, ReaderBackend
from runtimes.models import BUNDLED_MODEL

PACKAGE_DIR = Path(__file__).resolve().parent
BUILTIN_CORPUS = PACKAGE_DIR / "data" / "abstracts.jsonl"

DEFAULT_TOP_K = 3
"""Passages retrieved and read per question. Chosen for the shipped reader by `qa calibrate` (five dev sets at
once, --limit 300, each top_k with its own best threshold, retrieval weight and coverage exponent; 2026-12-04):
mean F1 0.697 at 2, 0.712 at 3, 0.710 at 4, 0.701 at 5 (the default before), 0.702 at 8 and 0.703 at 10; the grid
3, 5, 8, 10 was fixed before any was read, 2 and 4 measured after. Fewer passages are fewer distractors whose
spans outscore the right one: each of the five sets scored as well or better at 3 than at 5 (docs/reader.md)."""


def offline_by_default() -> None:
    """Without this, a hub id retries for over a minute before failing on a machine with no internet."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QA_",
        env_file=".env",
        extra="ignore",
        toml_file=os.environ.get("QA_SETTINGS_FILE", "qa.toml"),
        protected_namespaces=(),
    )

    corpus_path: Path = Field(BUILTIN_CORPUS, description="Corpus to index (JSONL, PubMed XML or a .txt folder).")
    index_dir: Path = Field(Path("var/index"), description="Where the index lives.")
    embedding_model: str = Field(
        BUNDLED_MODEL, description="sentence-transformers folder, hub id or the bundled alias."
    )
    embedding_backend: EmbedderBackend = Field(
        DEFAULT_BACKEND,
        description="onnx-int8 (default: the same seed_dev figures as torch, 2x faster), onnx or torch; ONNX graphs "
        "are exported once from the model folder, offline. An index records whether int8 built it, and is refused "
        "by the other kind.",
    )
    onnx_cache_dir: Path | None = Field(
        None,
        description="Where ONNX exports are cached, one per-user cache shared by every index (entries are keyed by "
        "the model files' digest); default: $XDG_CACHE_HOME/biomed-qa/onnx, else ~/.cache/biomed-qa/onnx.",
    )
    embedding_batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1, le=1024)
    chunk_max_tokens: int = Field(128, ge=8, le=512)
    chunk_overlap_sentences: int = Field(1, ge=0, le=10)
    dense_index: DenseIndexType = DenseIndexType.AUTO  # picked by chunk count: index/dense.py resolve_dense_type
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)

    retriever: RetrievalMode = RetrievalMode.HYBRID
    fusion_method: FusionMethod = Field(
        DEFAULT_FUSION_METHOD,
        description="How hybrid retrieval fuses dense and BM25 (zscore chosen on dev data, docs/evaluation.md).",
    )
    rrf_k: float = Field(
        DEFAULT_RRF_K, gt=0, description="RRF constant; 10 chosen on two dev sets (docs/evaluation.md)."
    )
    dense_weight: float = Field(
        DEFAULT_DENSE_WEIGHT, ge=0, description="Dense weight; 0.3 chosen on dev data (docs/evaluation.md)."
    )
    lexical_weight: float = Field(
        DEFAULT_LEXICAL_WEIGHT, ge=0, description="BM25 weight in the fusion (with rrf, 1.0 was the tuned pair)."
    )
    fusion_candidates: int = Field(DEFAULT_FUSION_CANDIDATES, ge=1)
    expand_abbreviations: bool = Field(True, description="Add corpus-defined abbreviation forms to BM25 queries.")
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=50, description="Passages retrieved and read per question.")

    reader: ReaderKind = ReaderKind.TRANSFORMERS
    reader_model: str = Field(
        str(BUNDLED_READER_DIR),
        description="Extractive QA checkpoint (folder or hub id) for the transformers reader; default: the model "
        "trained by `qa train-reader` and shipped in qa/data/reader (MODEL_CARD.md there).",
    )
    reader_backend: ReaderBackend = Field(
        ReaderBackend.TORCH,
        description="torch (default) or onnx: the same logits, from a graph exported once from the local reader "
        "folder into the ONNX cache; no faster than torch on 384-token windows on 2 cores (docs/performance.md).",
    )
    reader_precision: Precision = Field(
        Precision.AUTO,
        description="auto (default): bf16 autocast where the device runs bf16 natively (CPUs with avx512_bf16 or "
        "amx_bf16: 1.7x faster reading, SQuAD and COVID-QA oracle F1 within 0.003 of fp32), fp32 elsewhere; "
        "fp32 or bf16 to force one (qa/readers/precision.py). The torch backend only; onnx is fp32.",
    )
    expand_documents: int = Field(
        0,
        ge=0,
        le=20,
        description="Also read every chunk of the top N documents (when short). 0: the trained reader reads the "
        "top_k retrieved chunks only (one window each; each whole document read would add about 5 more per abstract, "
        "at about 20 ms a window on 2 cores); the heuristic reader was tuned with 3.",
    )
    expand_max_chars: int = Field(6000, ge=0, description="Documents longer than this are read chunk by chunk only.")
    retrieval_weight: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of 1/document-rank in an answer's score (BERTserini-style); default: the value "
        "calibrated for the reader (the shipped model's calibration.json).",
    )
    coverage_exponent: float | None = Field(
        None,
        ge=0,
        le=8,
        description="Reader scores are multiplied by the question's IDF-weighted term coverage in the answer's "
        "document to this power (qa/coverage.py; 0: off); default: the value calibrated for the reader.",
    )
    skip_unreachable: bool = Field(
        True,
        description="Do not read the passages of a document no answer could reach the threshold from (even at "
        "the top reader score, given its question coverage and retrieval rank): the same answers, less reading. "
        "Readers that read passages together (heuristic, combined) always read every passage.",
    )
    max_answers: int = Field(3, ge=1, le=20)
    secondary_ratio: float | None = Field(
        None,
        ge=0,
        le=1,
        description="An answer after the first is listed only when its score reaches this share of the first's "
        "(0: off); default: the value calibrated for the reader (listed answers' mean F1 on the dev sets).",
    )
    min_answer_score: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Abstain below this score; default: the threshold calibrated for the reader on several dev "
        "sets (the shipped model's calibration.json; 0.6 for the heuristic reader, its class constants).",
    )
    max_answer_tokens: int = Field(
        30,
        ge=1,
        le=200,
        description="Longest span, in reader tokens, a reader may return. 64 gave the same F1 on all five "
        "calibration sets at the calibrated setting (run-6 reader, qa calibrate with QA_MAX_ANSWER_TOKENS=64): the "
        "128-token chunks the service reads rarely hold a longer answer.",
    )
    faiss_threads: int = Field(1, ge=1, description="OpenMP threads for FAISS; 1 is fastest for single queries.")
    question_max_chars: int = Field(2000, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

    def index_config(self) -> IndexConfig:
        return IndexConfig(
            chunking=ChunkingConfig(self.chunk_max_tokens, self.chunk_overlap_sentences),
            dense_type=self.dense_index,
            bm25_k1=self.bm25_k1,
            bm25_b=self.bm25_b,
        )

    def onnx_cache_path(self) -> Path:
        """QA_ONNX_CACHE_DIR, else the per-user cache (XDG base directories), whatever the index directory: a new
        `--index-dir` reuses the exports instead of exporting again. A folder that cannot be created is reported
        when an export needs it, naming QA_ONNX_CACHE_DIR."""
        if self.onnx_cache_dir is not None:
            return self.onnx_cache_dir
        from runtimes.onnx_export import user_onnx_cache

        return user_onnx_cache()

    def fusion_config(self) -> FusionConfig:
        return FusionConfig(
            self.rrf_k, self.dense_weight, self.lexical_weight, self.fusion_candidates, self.fusion_method
        )
