"""Shared fixtures. Model-loading fixtures are session-scoped: the embedder loads once per test run."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path

import pytest

from index.documents import Document
from index.embedder import Embedder
from index.ingest import load_corpus
from qa.settings import BUILTIN_CORPUS, Settings

SHARED = Path(os.environ.get("QA_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
"""The gold and benchmark data some tests score against: `../shared` beside the checkout (where CI has it), or
wherever QA_SHARED_DIR points."""


def pytest_sessionstart(session: pytest.Session) -> None:
    """One clear stop instead of a dozen 'gold file not found' failures when the data folder is not there."""
    gold = SHARED / "gold" / "seed_dev.jsonl"
    if not gold.is_file():
        pytest.exit(
            f"the tests read gold data from {SHARED} and {gold} is not there: put the shared data folder beside "
            "this checkout (../shared) or set QA_SHARED_DIR to it",
            returncode=4,
        )


@pytest.fixture(scope="session")
def demo_documents() -> list[Document]:
    return load_corpus(BUILTIN_CORPUS).documents


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The embedder users get (the default settings': int8 ONNX, exported once into the per-user cache)."""
    from qa.pipeline import build_embedder

    emb = build_embedder(Settings(_env_file=None))
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def torch_embedder() -> Embedder:
    """The torch reference backend, for the tests that compare a backend against it."""
    from index.embedder import EmbedderBackend

    emb = Embedder(backend=EmbedderBackend.TORCH)
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the built-in corpus with a fresh index directory (built by `demo_pipeline`)."""
    return Settings(index_dir=tmp_path_factory.mktemp("demo-index"), _env_file=None)


@pytest.fixture(scope="session")
def demo_pipeline(demo_settings: Settings, embedder: Embedder):
    """The default pipeline over the built-in corpus, index built once for the whole session."""
    from qa.pipeline import QAPipeline

    pipeline = QAPipeline(demo_settings, embedder=embedder)  # the session's loaded model, shared
    pipeline.warm_up(build_if_missing=True)
    return pipeline


@pytest.fixture(scope="session")
def onnx_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exports are keyed by the model files' digest, so pytest's cache can keep them between runs safely (a run
    with `-p no:cacheprovider` exports once into a temporary folder instead)."""
    pytest.importorskip("onnxruntime")
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("onnx-export")) if cache is not None else tmp_path_factory.mktemp("onnx-export")


@pytest.fixture(scope="session")
def onnx_int8(embedder: Embedder) -> Embedder:
    """The int8 ONNX embedder: the default one, loaded once per session."""
    return embedder
