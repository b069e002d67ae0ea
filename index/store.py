"""Build, publish and load an index directory.

Layout: `<index_dir>/CURRENT` names one immutable folder under `<index_dir>/versions/`. A build writes a new
folder under a temporary name, renames it into place, then replaces CURRENT with `os.replace`, which is
atomic: a crash at any moment leaves CURRENT naming a complete index (the old one or the new one).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.chunking import Chunker, ChunkingConfig
from index.dense import DenseIndexType, build_dense_index, load_dense_index, save_dense_index
from index.documents import Chunk, Document
from index.embedder import Embedder
from index.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.ingest import corpus_fingerprint
from index.lexical import LexicalIndex
from index.manifest import FORMAT_VERSION, MANIFEST_NAME, CorpusInfo, Manifest, ModelInfo, file_digest

CURRENT_NAME = "CURRENT"
VERSIONS_DIR = "versions"
LEXICAL_TOKENIZER = "word-stopwords-ize-snowball-en/2"
KEEP_VERSIONS = 2


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """What an index must have been built with to be used; compared against the manifest on load."""

    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    dense_type: DenseIndexType = DenseIndexType.FLAT
    bm25_k1: float = 1.2
    bm25_b: float = 0.75

    def dense_json(self) -> dict[str, Any]:
        return {"type": self.dense_type.value}

    def lexical_json(self) -> dict[str, Any]:
        return {"k1": self.bm25_k1, "b": self.bm25_b, "tokenizer": LEXICAL_TOKENIZER}


@dataclass
class CorpusIndex:
    """A loaded index: documents, chunks, FAISS and BM25, all aligned on chunk position."""

    path: Path
    manifest: Manifest
    documents: dict[str, Document]
    chunks: list[Chunk]
    dense: faiss.Index
    lexical: LexicalIndex

    _by_doc: dict[str, list[Chunk]] = field(default_factory=dict, init=False, repr=False)

    def document(self, doc_id: str) -> Document | None:
        return self.documents.get(doc_id)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """A document's chunks in reading order."""
        if not self._by_doc:
            by_doc: dict[str, list[Chunk]] = {}
            for c in self.chunks:
                by_doc.setdefault(c.doc_id, []).append(c)
            self._by_doc = by_doc
        return self._by_doc.get(doc_id, [])


def embedding_text(doc: Document, chunk: Chunk) -> str:
    """The title travels with every chunk into the vector; it is not part of the citable text."""
    return f"{doc.title}. {chunk.text}" if doc.title else chunk.text


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_version(index_dir: Path) -> Path | None:
    pointer = index_dir / CURRENT_NAME
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    if not name or "/" in name or name.startswith("."):
        raise IndexCorruptError(f"{pointer}: does not name an index version; rebuild with `qa index`")
    return index_dir / VERSIONS_DIR / name


def build_index(
    documents: Sequence[Document],
    embedder: Embedder,
    index_dir: Path,
    config: IndexConfig = IndexConfig(),
    source: str | None = None,
    show_progress: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> Manifest:
    """Chunk, embed and index `documents`, then publish the result atomically as the current index."""
    embedder.warm_up()
    say = on_stage or (lambda _msg: None)
    chunker = Chunker(config.chunking, embedder.count_tokens)
    by_id = {d.id: d for d in documents}
    chunks = list(chunker.chunk_all(documents))
    say(f"{len(documents)} documents -> {len(chunks)} chunks")
    vectors = embedder.encode([embedding_text(by_id[c.doc_id], c) for c in chunks], show_progress=show_progress)
    dense = build_dense_index(vectors, config.dense_type)
    lexical = LexicalIndex.build([embedding_text(by_id[c.doc_id], c) for c in chunks], config.bm25_k1, config.bm25_b)

    versions = index_dir / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    tmp = versions / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        _write_jsonl(tmp / "documents.jsonl", [d.to_json() for d in documents])
        _write_jsonl(tmp / "chunks.jsonl", [c.to_json() for c in chunks])
        save_dense_index(dense, tmp / "dense.faiss")
        lexical.save(tmp / "bm25")
        files = {p.relative_to(tmp).as_posix(): file_digest(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = Manifest(
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            model=ModelInfo(
                name=embedder.model_name,
                fingerprint=embedder.fingerprint,
                dimension=embedder.dimension,
                max_seq_length=embedder.max_seq_length,
            ),
            chunking={**config.chunking.to_json(), "title_prefix": True},
            dense=config.dense_json(),
            lexical=config.lexical_json(),
            corpus=CorpusInfo(
                fingerprint=corpus_fingerprint(documents),
                n_documents=len(documents),
                n_chunks=len(chunks),
                source=source,
            ),
            files=files,
        )
        (tmp / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        _fsync_tree(tmp)
        name = f"v{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{manifest.fingerprint[:8]}-{uuid.uuid4().hex[:6]}"
        final = versions / name
        os.rename(tmp, final)
        _fsync_dir(versions)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer_tmp = index_dir / f".{CURRENT_NAME}.{uuid.uuid4().hex}"
    pointer_tmp.write_text(name + "\n", encoding="utf-8")
    with pointer_tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(pointer_tmp, index_dir / CURRENT_NAME)
    _fsync_dir(index_dir)
    say(f"published {final}")
    _prune(index_dir, keep=name)
    return manifest


def _prune(index_dir: Path, keep: str) -> None:
    """Drop old versions (the newest KEEP_VERSIONS stay, for a reader still holding one) and dead temp dirs."""
    versions = index_dir / VERSIONS_DIR
    done = sorted((p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for old in [p for p in done if p.name != keep][: max(0, len(done) - KEEP_VERSIONS)]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in versions.glob(".tmp-*"):
        if time.time() - tmp.stat().st_mtime > 3600:  # an abandoned build; a live one is younger
            shutil.rmtree(tmp, ignore_errors=True)
    for stale in index_dir.glob(f".{CURRENT_NAME}.*"):
        stale.unlink(missing_ok=True)


def read_manifest(index_dir: Path) -> tuple[Path, Manifest]:
    version = current_version(index_dir)
    if version is None:
        raise IndexNotFoundError(f"no index at {index_dir}; build one with `qa index --index-dir {index_dir}`")
    path = version / MANIFEST_NAME
    if not path.is_file():
        raise IndexCorruptError(f"{path}: missing; rebuild with `qa index --index-dir {index_dir}`")
    try:
        manifest = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except Exception as err:
        raise IndexCorruptError(f"{path}: unreadable manifest ({type(err).__name__}); rebuild with `qa index`") from err
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{path}: index format {manifest.format_version}, this version reads {FORMAT_VERSION}; rebuild with `qa index`"
        )
    return version, manifest


def check_compatible(manifest: Manifest, config: IndexConfig, model_name: str, model_fingerprint: str | None) -> None:
    """Refuse an index built with another model, chunking or index kind, naming each difference."""
    problems = []
    if model_fingerprint is not None and manifest.model.fingerprint != model_fingerprint:
        problems.append(
            f"embedding model: index has {manifest.model.name!r} (weights {manifest.model.fingerprint}), "
            f"configured {model_name!r} (weights {model_fingerprint})"
        )
    want_chunking = {**config.chunking.to_json(), "title_prefix": True}
    if manifest.chunking != want_chunking:
        problems.append(f"chunking: index has {manifest.chunking}, configured {want_chunking}")
    if manifest.dense != config.dense_json():
        problems.append(f"dense index: index has {manifest.dense}, configured {config.dense_json()}")
    if manifest.lexical != config.lexical_json():
        problems.append(f"lexical index: index has {manifest.lexical}, configured {config.lexical_json()}")
    if problems:
        raise IndexMismatchError(
            "the index was built with other settings; rebuild it with `qa index` or change the settings:\n  - "
            + "\n  - ".join(problems)
        )


def load_index(
    index_dir: Path,
    config: IndexConfig | None = None,
    model_name: str = "",
    model_fingerprint: str | None = None,
    verify_files: bool = True,
) -> CorpusIndex:
    """Load the current index, verifying each file against the manifest and the manifest against `config`."""
    index_dir = Path(index_dir)
    version, manifest = read_manifest(index_dir)
    if config is not None:
        check_compatible(manifest, config, model_name, model_fingerprint)
    for rel, info in manifest.files.items():
        path = version / rel
        if not path.is_file():
            raise IndexCorruptError(f"{path}: missing; rebuild with `qa index --index-dir {index_dir}`")
        actual = file_digest(path) if verify_files else None
        if path.stat().st_size != info.size or (actual is not None and actual.sha256 != info.sha256):
            raise IndexCorruptError(
                f"{path}: contents differ from the manifest (truncated or altered); rebuild with `qa index --index-dir {index_dir}`"
            )
    try:
        documents = {}
        with (version / "documents.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                doc = Document.from_json(json.loads(line))
                documents[doc.id] = doc
        chunks = []
        with (version / "chunks.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                doc = documents[row["doc_id"]]
                chunks.append(Chunk.from_document(doc, row["start"], row["end"], row["ordinal"]))
    except (ValueError, KeyError, TypeError) as err:
        raise IndexCorruptError(f"{version}: documents or chunks unreadable ({type(err).__name__}: {err})") from err
    if len(chunks) != manifest.corpus.n_chunks or len(documents) != manifest.corpus.n_documents:
        raise IndexCorruptError(f"{version}: counts differ from the manifest; rebuild with `qa index`")
    dense = load_dense_index(version / "dense.faiss", len(chunks), manifest.model.dimension)
    lexical = LexicalIndex.load(version / "bm25", len(chunks), manifest.lexical["k1"], manifest.lexical["b"])
    return CorpusIndex(version, manifest, documents, chunks, dense, lexical)


def chunk_vectors(index: CorpusIndex) -> np.ndarray:
    """All stored vectors (flat indexes only), e.g. for tests comparing rebuilds."""
    return index.dense.reconstruct_n(0, index.dense.ntotal)
