"""Reliability fixtures: private copies of the demo index, so tests that change an index never touch the shared one."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from index.embedder import Embedder
from qa.pipeline import QAPipeline
from qa.settings import Settings


@pytest.fixture(scope="session")
def copy_demo_index(
    demo_pipeline: QAPipeline, demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """`copy_demo_index(name)`: a fresh copy of the session's demo index directory (built once by demo_pipeline)."""

    def copy(name: str) -> Path:
        target = tmp_path_factory.mktemp(name) / "index"
        shutil.copytree(demo_settings.index_dir, target)
        return target

    return copy


@pytest.fixture(scope="session")
def make_pipeline(embedder: Embedder) -> Callable[..., QAPipeline]:
    """`make_pipeline(index_dir, **settings)`: a warmed pipeline over `index_dir` sharing the session's model."""

    def make(index_dir: Path, **overrides: object) -> QAPipeline:
        pipeline = QAPipeline(Settings(index_dir=index_dir, _env_file=None, **overrides), embedder=embedder)
        pipeline.warm_up()
        return pipeline

    return make
