"""The ONNX encoder against torch: same vectors (fp32), close ones (int8), same token counts, and the
fingerprint rules that decide which index each backend may serve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.embedder import Embedder, EmbedderBackend
from runtimes.onnx_export import folder_digest, mean_pool

SENTENCES = [
    "The median overall survival was 16.43 months with STRIDE.",
    "Which kinases does lenvatinib inhibit?",
    "Desmoid tumors are locally aggressive soft-tissue neoplasms.",
    "SARS-CoV-2 binds ACE2.",
    # Longer than MiniLM's 256 tokens: both backends must truncate at the same place.
    " ".join(["Hepatocellular carcinoma patients received sorafenib or placebo in a randomised trial."] * 40),
]


def test_mean_pool_ignores_padding_and_normalises() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    out = mean_pool(hidden, mask)
    np.testing.assert_allclose(out, [[1.0, 0.0]], atol=1e-6)  # mean (2, 0), padding ignored, unit length


def test_unknown_backend_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="torch, onnx, onnx-int8"):
        Embedder(backend="tensorrt")


def test_folder_digest_follows_the_files_not_the_name(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "README.md").write_text("docs do not count")
    assert folder_digest(a) == folder_digest(b)
    (b / "README.md").write_text("still docs")
    assert folder_digest(a) == folder_digest(b)
    (b / "config.json").write_text('{"hidden_size": 1}')
    assert folder_digest(a) != folder_digest(b)


@pytest.fixture(scope="module")
def onnx_fp32(onnx_cache: Path) -> Embedder:
    e = Embedder(backend=EmbedderBackend.ONNX, onnx_cache_dir=onnx_cache)
    e.warm_up()
    return e


@pytest.mark.model
def test_fp32_matches_torch_and_keeps_its_fingerprint(torch_embedder: Embedder, onnx_fp32: Embedder) -> None:
    ref = torch_embedder.encode(SENTENCES)
    got = onnx_fp32.encode(SENTENCES)
    assert got.shape == ref.shape == (len(SENTENCES), 384)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert float((ref * got).sum(axis=1).min()) > 0.9999
    assert onnx_fp32.fingerprint == torch_embedder.fingerprint
    assert onnx_fp32.max_seq_length == torch_embedder.max_seq_length == 256


@pytest.mark.model
def test_int8_is_close_and_says_so_in_its_fingerprint(torch_embedder: Embedder, onnx_int8: Embedder) -> None:
    cos = (torch_embedder.encode(SENTENCES) * onnx_int8.encode(SENTENCES)).sum(axis=1)
    assert float(cos.mean()) >= 0.99
    assert onnx_int8.fingerprint == f"{torch_embedder.fingerprint}-int8"


@pytest.mark.model
def test_token_counts_match_torch(torch_embedder: Embedder, onnx_fp32: Embedder) -> None:
    """Chunk boundaries depend on these counts: an index chunked by either backend must be the same."""
    texts = [*SENTENCES, "", "Ki-67 ≥ 20% (n = 393); p<0.001", "naïve café résumé"]
    assert [onnx_fp32.count_tokens(t) for t in texts] == [torch_embedder.count_tokens(t) for t in texts]


@pytest.mark.model
def test_batched_order_is_the_order_given(onnx_fp32: Embedder) -> None:
    """Texts are batched longest first; every row must still belong to its own text."""
    batched = onnx_fp32.encode(SENTENCES)
    one_by_one = np.vstack([onnx_fp32.encode([s]) for s in SENTENCES])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)
    assert onnx_fp32.encode([]).shape == (0, 384)


@pytest.mark.model
def test_index_built_with_torch_serves_fp32_and_refuses_int8(
    tmp_path: Path, torch_embedder: Embedder, onnx_fp32: Embedder, onnx_int8: Embedder
) -> None:
    from index.documents import Document
    from index.errors import IndexMismatchError
    from index.store import IndexConfig, build_index, load_index

    docs = [Document(id=f"d{i}", text=s) for i, s in enumerate(SENTENCES[:3])]
    build_index(docs, torch_embedder, tmp_path, IndexConfig())
    loaded = load_index(tmp_path, IndexConfig(), onnx_fp32.model_name, onnx_fp32.fingerprint)
    assert len(loaded.chunks) == 3
    with pytest.raises(IndexMismatchError, match="int8"):
        load_index(tmp_path, IndexConfig(), onnx_int8.model_name, onnx_int8.fingerprint)


@pytest.mark.model
def test_a_second_export_reuses_the_cache(onnx_cache: Path, onnx_fp32: Embedder) -> None:
    from runtimes.models import resolve_model_path
    from runtimes.onnx_export import FP32_NAME, export_model

    folder = export_model(resolve_model_path(onnx_fp32.model_name), onnx_cache)
    before = (folder / FP32_NAME).stat().st_mtime_ns
    assert export_model(resolve_model_path(onnx_fp32.model_name), onnx_cache) == folder
    assert (folder / FP32_NAME).stat().st_mtime_ns == before
    assert not list(onnx_cache.glob(".tmp-*"))


@pytest.mark.model
def test_query_vectors_are_the_same_alone_and_in_a_batch(torch_embedder: Embedder, onnx_int8: Embedder) -> None:
    """A batch of questions must retrieve what each alone would: int8 scales its activations per batch, so its
    questions are encoded one by one; torch's batch differs from one by one only by float rounding."""
    assert torch_embedder.batch_invariant and not onnx_int8.batch_invariant
    for e, atol in ((torch_embedder, 1e-5), (onnx_int8, 0.0)):
        alone = np.vstack([e.encode([s]) for s in SENTENCES])
        np.testing.assert_allclose(e.encode_queries(SENTENCES), alone, atol=atol)


def test_an_unwritable_export_cache_is_named_with_the_setting(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from common.errors import ModelLoadError
    from runtimes.models import resolve_model_path
    from runtimes.onnx_export import export_model

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelLoadError, match="QA_ONNX_CACHE_DIR"):
        export_model(resolve_model_path(Embedder().model_name), blocker / "cache", say=print)


@pytest.mark.model
def test_a_cached_export_is_reused_silently(onnx_cache: Path, onnx_int8: Embedder) -> None:
    from runtimes.models import resolve_model_path
    from runtimes.onnx_export import export_model

    said: list[str] = []
    export_model(resolve_model_path(onnx_int8.model_name), onnx_cache, say=said.append)
    assert said == []  # the progress message is for the one-off export only
