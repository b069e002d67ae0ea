"""One index per (gold corpus, model, chunking, index settings), built once in a cache folder and reused.

The folder name is a digest of exactly what the index's manifest fingerprint covers, computed before building,
so a second run finds the index without embedding anything; `load_index` then still verifies every file and
setting against the manifest, and a damaged cache entry is rebuilt rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from index.documents import Document
from index.embedder import Embedder
from index.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.ingest import corpus_fingerprint
from index.store import IndexConfig, build_index, read_manifest

DEFAULT_CACHE_DIR = Path("var/eval-cache")


def index_key(corpus_fp: str, config: IndexConfig, model_fingerprint: str) -> str:
    payload = {
        "corpus": corpus_fp,
        "model": model_fingerprint,
        "chunking": config.chunking.to_json(),
        "dense": {"type": config.dense_type.value},  # `auto` resolves from the chunk count, which the key fixes
        "lexical": config.lexical_json(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cached_index_dir(
    documents: Sequence[Document],
    embedder: Embedder,
    config: IndexConfig,
    cache_dir: Path,
    source: str,
    show_progress: bool = False,
    say: Callable[[str], None] = lambda _m: None,
    force_rebuild: bool = False,
) -> Path:
    """The cache folder holding an index of `documents`, built first when absent, unusable or `force_rebuild`
    (the caller found a file damaged on load)."""
    embedder.warm_up()
    corpus_fp = corpus_fingerprint(documents)
    index_dir = Path(cache_dir) / index_key(corpus_fp, config, embedder.fingerprint)
    if not force_rebuild:
        try:
            _, manifest = read_manifest(index_dir)
            if manifest.corpus.fingerprint == corpus_fp:
                say(f"reusing the cached index {index_dir}")
                return index_dir
            say(f"cached index {index_dir} holds another corpus: rebuilding it")
        except IndexNotFoundError:
            say(f"building the index of {source} in {index_dir}")
        except (IndexCorruptError, IndexMismatchError) as err:
            say(f"cached index {index_dir} unusable ({err}): rebuilding it")
    build_index(documents, embedder, index_dir, config, source=source, show_progress=show_progress, on_stage=say)
    return index_dir
