from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from index.retriever import RetrievalMode
from qa.settings import BUILTIN_CORPUS, Settings


def test_defaults_point_at_the_builtin_corpus() -> None:
    s = Settings(_env_file=None)
    assert s.corpus_path == BUILTIN_CORPUS and BUILTIN_CORPUS.is_file()
    assert s.retriever is RetrievalMode.HYBRID


def test_environment_and_file_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QA_TOP_K", "7")
    monkeypatch.setenv("QA_RETRIEVER", "bm25")
    assert Settings(_env_file=None).top_k == 7
    assert Settings(_env_file=None).retriever is RetrievalMode.BM25
    env = tmp_path / ".env"
    env.write_text("QA_MAX_ANSWERS=4\n", encoding="utf-8")
    assert Settings(_env_file=env).max_answers == 4


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_RETRIEVER", "semantic")
    with pytest.raises(ValidationError, match="retriever"):
        Settings(_env_file=None)
    with pytest.raises(ValidationError, match="top_k"):
        Settings(top_k=0, _env_file=None)


@pytest.mark.parametrize(
    ("field", "good", "bad", "choices"),
    [
        ("embedding_backend", "onnx-int8", "tensorrt", "'torch', 'onnx' or 'onnx-int8'"),
        ("reader_precision", "fp32", "int4", "'auto', 'fp32' or 'bf16'"),
    ],
)
def test_enum_settings_read_the_environment_and_their_errors_list_the_choices(
    monkeypatch: pytest.MonkeyPatch, field: str, good: str, bad: str, choices: str
) -> None:
    variable = f"QA_{field.upper()}"
    monkeypatch.setenv(variable, good)
    assert getattr(Settings(_env_file=None), field).value == good
    monkeypatch.setenv(variable, bad)
    with pytest.raises(ValidationError, match=field) as err:
        Settings(_env_file=None)
    assert choices in str(err.value)


def test_reader_precision_defaults_to_auto() -> None:
    from qa.readers.precision import Precision

    assert Settings(_env_file=None).reader_precision is Precision.AUTO


def test_one_onnx_cache_per_user_is_shared_by_every_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new --index-dir reuses the exports instead of exporting again (15-25 s, 1.5 GB each time)."""
    monkeypatch.delenv("QA_ONNX_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    a = Settings(index_dir=tmp_path / "a" / "index", _env_file=None).onnx_cache_path()
    b = Settings(index_dir=tmp_path / "elsewhere", _env_file=None).onnx_cache_path()
    assert a == b == tmp_path / "home" / ".cache" / "biomed-qa" / "onnx"


def test_onnx_cache_honours_xdg_cache_home_and_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_ONNX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert Settings(index_dir=tmp_path, _env_file=None).onnx_cache_path() == tmp_path / "xdg" / "biomed-qa" / "onnx"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid by the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings(_env_file=None).onnx_cache_path() == tmp_path / "home" / ".cache" / "biomed-qa" / "onnx"
    monkeypatch.setenv("QA_ONNX_CACHE_DIR", str(tmp_path / "c"))
    assert Settings(index_dir=tmp_path, _env_file=None).onnx_cache_path() == tmp_path / "c"
    assert Settings(onnx_cache_dir=tmp_path / "d", _env_file=None).onnx_cache_path() == tmp_path / "d"


def test_an_onnx_cache_that_cannot_be_created_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.errors import ModelLoadError
    from runtimes.onnx_export import prepare_cache

    monkeypatch.delenv("QA_ONNX_CACHE_DIR", raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    cache = Settings(_env_file=None).onnx_cache_path()
    with pytest.raises(ModelLoadError, match=r"cannot create the ONNX export cache .*set QA_ONNX_CACHE_DIR"):
        prepare_cache(cache / "entry")


def test_library_defaults_are_the_product_defaults() -> None:
    """A component built with no arguments behaves as the service configured by default does."""
    from index.embedder import Embedder
    from index.retriever import FusionConfig
    from index.store import IndexConfig
    from qa.pipeline import build_embedder
    from qa.readers.heuristic import HeuristicReader
    from qa.readers.transformers_reader import TransformersReader

    settings = Settings(_env_file=None)
    assert settings.fusion_config() == FusionConfig()
    assert settings.index_config() == IndexConfig()
    configured, plain = build_embedder(settings), Embedder()
    assert (configured.model_name, configured.backend, configured.batch_size) == (
        plain.model_name,
        plain.backend,
        plain.batch_size,
    )
    reader = TransformersReader()
    assert (reader.model_name, reader.max_answer_tokens, reader.backend, reader.precision) == (
        settings.reader_model,
        settings.max_answer_tokens,
        settings.reader_backend,
        settings.reader_precision,
    )
    assert HeuristicReader().max_answer_tokens == settings.max_answer_tokens
