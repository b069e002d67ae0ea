"""Build, publish and load an index directory.

Layout: `<index_dir>/CURRENT` names one immutable folder under `<index_dir>/versions/` (and records the sha256
of that folder's manifest). A build writes a new folder under a temporary name, renames it into place, then
replaces CURRENT with `os.replace`, which is atomic: a crash at any moment leaves CURRENT naming a complete index
(the old one or the new one). Publishers take an advisory lock, so two never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from common.errors import QAError
from index.chunking import Chunker, ChunkingConfig
from index.dense import (
    FLAT_MAX_VECTORS,
    DenseIndexType,
    DenseSpec,
    build_dense_index,
    dense_spec,
    load_dense_index,
    resolve_dense_type,
    save_dense_index,
)
from index.documents import Chunk, Document
from index.embedder import Embedder
from index.errors import CorpusError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.ingest import corpus_fingerprint
from index.lexical import LexicalIndex
from index.manifest import FORMAT_VERSION, MANIFEST_NAME, CorpusInfo, Manifest, ModelInfo, file_digest

CURRENT_NAME = "CURRENT"
VERSIONS_DIR = "versions"
LOCK_NAME = ".lock"
LEXICAL_TOKENIZER = "word-stopwords-ize-snowball-en/2"
KEEP_VERSIONS = 2
VECTORS_NAME = "vectors.npy"  # the exact vectors, next to a FAISS kind that keeps only 8-bit codes
_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_DIGEST_LINE = re.compile(r"manifest-sha256 ([0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """What an index must have been built with to be used; compared against the manifest on load."""

    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    dense_type: DenseIndexType = DenseIndexType.AUTO
    bm25_k1: float = 1.2
    bm25_b: float = 0.75

    def dense_spec(self, n_vectors: int) -> DenseSpec:
        """The concrete kind and settings an index of `n_vectors` is built with (`auto` resolved)."""
        return dense_spec(self.dense_type, n_vectors)

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


class IndexWriteError(QAError, OSError):
    """A new index version could not be written (no space, no permission, ...); the current one is untouched."""


class IndexConflictError(QAError):
    """CURRENT moved while an update was being prepared: publishing would silently drop the other change."""


class _Anything:
    """`publish_version`'s default: no expectation about what CURRENT names."""


ANY_CURRENT = _Anything()


@dataclass(frozen=True, slots=True)
class Pointer:
    """What CURRENT says: the version's folder name and, since format 2 of the pointer, its manifest's sha256."""

    name: str
    manifest_sha256: str | None = None


def _document_line(doc: Document) -> str:
    """One documents.jsonl line; refuses what could not be written as UTF-8 or served back as JSON later."""
    try:
        line = json.dumps(doc.to_json(), ensure_ascii=False)
        line.encode("utf-8")
    except UnicodeEncodeError as err:
        raise CorpusError(
            f"document {doc.id!r}: not valid Unicode text ({err.reason} at character {err.start} of its JSON form)"
        ) from err
    except (TypeError, ValueError) as err:
        raise CorpusError(f"document {doc.id!r}: 'meta' is not plain JSON ({err})") from err
    return line


def check_documents(documents: Sequence[Document]) -> list[str]:
    """Refuse what would crash or corrupt a build (duplicate ids, lone surrogates, ...), naming the document;
    returns each document's JSON line, ready to be written."""
    seen: set[str] = set()
    lines = []
    for doc in documents:
        if not isinstance(doc.id, str) or not doc.id:
            raise CorpusError(f"document {doc.id!r}: the id must be a non-empty string")
        if doc.id in seen:
            raise CorpusError(f"document {doc.id!r}: duplicate id")
        if not isinstance(doc.text, str) or (doc.title is not None and not isinstance(doc.title, str)):
            raise CorpusError(f"document {doc.id!r}: text and title must be strings")
        seen.add(doc.id)
        lines.append(_document_line(doc))
    return lines


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
        elif p.is_dir():
            _fsync_dir(p)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_pointer(index_dir: Path) -> Pointer | None:
    """CURRENT's content, or None when there is no index yet; a damaged pointer is refused by name."""
    pointer = index_dir / CURRENT_NAME
    if not pointer.is_file():
        return None
    try:
        raw = pointer.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as err:
        raise IndexCorruptError(f"{pointer}: unreadable ({err}); rebuild with `qa index`") from err
    lines = raw.splitlines()
    name = lines[0].strip() if lines else ""
    if not _VERSION_NAME.fullmatch(name):
        raise IndexCorruptError(f"{pointer}: does not name an index version; rebuild with `qa index`")
    digest = None
    if len(lines) > 1:
        m = _DIGEST_LINE.fullmatch(lines[1])
        # The pointer is written whole, newline included, then renamed into place: anything else is damage.
        if m is None or len(lines) > 2 or not raw.endswith("\n"):
            raise IndexCorruptError(f"{pointer}: damaged (its digest line is not intact); rebuild with `qa index`")
        digest = m.group(1)
    return Pointer(name, digest)


def current_version(index_dir: Path) -> Path | None:
    pointer = read_pointer(Path(index_dir))
    return None if pointer is None else Path(index_dir) / VERSIONS_DIR / pointer.name


@contextmanager
def publish_lock(index_dir: Path) -> Iterator[None]:
    """One publisher at a time per index directory (an advisory lock, released if the process dies)."""
    fd = os.open(index_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _version_name(fingerprint: str) -> str:
    """Sortable by creation time (microseconds) so pruning keeps the newest; unique by a random suffix."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"v{stamp}{int(now % 1 * 1_000_000):06d}-{fingerprint[:8]}-{uuid.uuid4().hex[:6]}"


def write_version(
    index_dir: Path,
    documents: Sequence[Document],
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    model: ModelInfo,
    config: IndexConfig,
    source: str | None = None,
) -> tuple[str, Manifest]:
    """Write a complete, fsynced version folder (not yet current) and return its name and manifest.

    Everything goes to a temporary folder first, renamed into place only when whole: a crash leaves at most a
    `.tmp-*` folder, which readers never look at. A write that fails (no space, no permission) removes the
    temporary folder and raises IndexWriteError naming the cause.
    """
    lines = check_documents(documents)
    if len(vectors) != len(chunks):
        raise ValueError(f"{len(vectors)} vectors for {len(chunks)} chunks")
    spec = config.dense_spec(len(vectors))
    dense = build_dense_index(vectors, spec)
    by_id = {d.id: d for d in documents}
    lexical = LexicalIndex.build([embedding_text(by_id[c.doc_id], c) for c in chunks], config.bm25_k1, config.bm25_b)
    versions = index_dir / VERSIONS_DIR
    tmp: Path | None = None
    try:
        versions.mkdir(parents=True, exist_ok=True)
        tmp = versions / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        _write_lines(tmp / "documents.jsonl", lines)
        _write_lines(tmp / "chunks.jsonl", [json.dumps(c.to_json(), ensure_ascii=False) for c in chunks])
        save_dense_index(dense, tmp / "dense.faiss")
        if not spec.keeps_exact_vectors:
            np.save(tmp / VECTORS_NAME, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        lexical.save(tmp / "bm25")
        files = {p.relative_to(tmp).as_posix(): file_digest(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = Manifest(
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            model=model,
            chunking={**config.chunking.to_json(), "title_prefix": True},
            dense=spec.to_json(),
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
        name = _version_name(manifest.fingerprint)
        os.rename(tmp, versions / name)
        tmp = None
        _fsync_dir(versions)
    except OSError as err:
        raise IndexWriteError(
            f"cannot write a new index version under {versions}: {err}; the current index is unchanged"
        ) from err
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return name, manifest


def publish_version(index_dir: Path, name: str, expect_current: str | _Anything | None = ANY_CURRENT) -> None:
    """Make version `name` the current index with one atomic `os.replace` of CURRENT.

    `expect_current` turns this into a compare-and-swap: an incremental update built on version X publishes only
    if CURRENT still names X, so a concurrent rebuild is never silently overwritten.
    """
    index_dir = Path(index_dir)
    version = index_dir / VERSIONS_DIR / name
    if not _VERSION_NAME.fullmatch(name) or not (version / MANIFEST_NAME).is_file():
        raise IndexNotFoundError(f"{version}: no such index version")
    digest = file_digest(version / MANIFEST_NAME).sha256
    pointer_tmp = index_dir / f".{CURRENT_NAME}.{uuid.uuid4().hex}"
    try:
        with publish_lock(index_dir):
            if not isinstance(expect_current, _Anything):
                now = read_pointer(index_dir)
                now_name = now.name if now is not None else None
                if now_name != expect_current:
                    raise IndexConflictError(
                        f"{index_dir}: the current index changed from {expect_current} to {now_name} meanwhile; "
                        "apply the update again"
                    )
            with pointer_tmp.open("w", encoding="utf-8") as fh:
                fh.write(f"{name}\nmanifest-sha256 {digest}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(pointer_tmp, index_dir / CURRENT_NAME)
            _fsync_dir(index_dir)
            _prune(index_dir, keep=name)
    except OSError as err:
        raise IndexWriteError(f"cannot switch {index_dir} to {name}: {err}; the current index is unchanged") from err
    finally:
        pointer_tmp.unlink(missing_ok=True)


def publish_index(
    index_dir: Path,
    documents: Sequence[Document],
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    model: ModelInfo,
    config: IndexConfig,
    source: str | None = None,
    expect_current: str | _Anything | None = ANY_CURRENT,
    say: Callable[[str], None] | None = None,
) -> tuple[Path, Manifest]:
    """`write_version` then `publish_version`; a version that could not be published is removed again."""
    index_dir = Path(index_dir)
    name, manifest = write_version(index_dir, documents, chunks, vectors, model, config, source)
    final = index_dir / VERSIONS_DIR / name
    try:
        publish_version(index_dir, name, expect_current)
    except BaseException:
        with contextlib.suppress(IndexCorruptError, OSError):
            pointer = read_pointer(index_dir)
            if pointer is None or pointer.name != name:
                shutil.rmtree(final, ignore_errors=True)
        raise
    if say is not None:
        say(f"published {final}")
    return final, manifest


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
    check_documents(documents)
    embedder.warm_up()
    say = on_stage or (lambda _msg: None)
    chunker = Chunker(config.chunking, embedder.count_tokens)
    by_id = {d.id: d for d in documents}
    chunks = list(chunker.chunk_all(documents))
    say(f"{len(documents)} documents -> {len(chunks)} chunks")
    vectors = embedder.encode([embedding_text(by_id[c.doc_id], c) for c in chunks], show_progress=show_progress)
    _, manifest = publish_index(
        Path(index_dir), documents, chunks, vectors, model_info(embedder), config, source=source, say=say
    )
    return manifest


def model_info(embedder: Embedder) -> ModelInfo:
    return ModelInfo(
        name=embedder.model_name,
        fingerprint=embedder.fingerprint,
        dimension=embedder.dimension,
        max_seq_length=embedder.max_seq_length,
    )


def _prune(index_dir: Path, keep: str) -> None:
    """Drop old versions (the newest KEEP_VERSIONS stay, for a reader still holding one) and dead temp files.

    Runs under the publish lock, so no other publisher's pointer file is in flight.
    """
    versions = index_dir / VERSIONS_DIR
    done = sorted((p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for old in [p for p in done if p.name != keep][: max(0, len(done) - KEEP_VERSIONS)]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in versions.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if time.time() - tmp.stat().st_mtime > 3600:  # an abandoned build; a live one is younger
                shutil.rmtree(tmp, ignore_errors=True)
    for stale in index_dir.glob(f".{CURRENT_NAME}.*"):
        stale.unlink(missing_ok=True)


def read_current_manifest_bytes(index_dir: Path, build_hint: str = "") -> tuple[Path, Path, bytes]:
    """(version folder, manifest path, manifest bytes) of the version CURRENT names, the bytes checked against
    the digest CURRENT records: what every index layout (single node, sharded) parses its manifest from.
    `build_hint` is added to the build command in the not-found message (e.g. " --shards N")."""
    index_dir = Path(index_dir)
    pointer = read_pointer(index_dir)
    if pointer is None:
        raise IndexNotFoundError(
            f"no index at {index_dir}; build one with `qa index --index-dir {index_dir}{build_hint}`"
        )
    version = index_dir / VERSIONS_DIR / pointer.name
    if not version.is_dir():
        raise IndexCorruptError(
            f"{index_dir / CURRENT_NAME}: names {pointer.name}, which is not in {index_dir / VERSIONS_DIR}; "
            f"rebuild with `qa index --index-dir {index_dir}`"
        )
    path = version / MANIFEST_NAME
    if not path.is_file():
        raise IndexCorruptError(f"{path}: missing; rebuild with `qa index --index-dir {index_dir}`")
    raw = path.read_bytes()
    if pointer.manifest_sha256 is not None and hashlib.sha256(raw).hexdigest() != pointer.manifest_sha256:
        raise IndexCorruptError(
            f"{path}: contents differ from the digest recorded in {index_dir / CURRENT_NAME} (one of the two is "
            f"truncated or altered); rebuild with `qa index --index-dir {index_dir}`"
        )
    return version, path, raw


def read_manifest(index_dir: Path) -> tuple[Path, Manifest]:
    version, path, raw = read_current_manifest_bytes(index_dir)
    try:
        manifest = Manifest.model_validate_json(raw)
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
    dense = dense_problem(manifest, config.dense_type)
    if dense is not None:
        problems.append(dense)
    if manifest.lexical != config.lexical_json():
        problems.append(f"lexical index: index has {manifest.lexical}, configured {config.lexical_json()}")
    if problems:
        raise IndexMismatchError(
            "the index was built with other settings; rebuild it with `qa index` or change the settings:\n  - "
            + "\n  - ".join(problems)
        )


def dense_problem(manifest: Manifest, configured: DenseIndexType) -> str | None:
    """Compare kinds, not settings: efSearch, nprobe and list counts follow from the size and are recorded, so
    an index of the configured kind serves whatever its settings. `auto` accepts what it picks at the index's
    size, so a default-settings service loads the index a default-settings build wrote, across updates too."""
    built = manifest.dense.get("type")
    n = manifest.corpus.n_chunks
    want = resolve_dense_type(configured, n)
    if built == want.value:
        return None
    if configured is DenseIndexType.AUTO:
        return (
            f"dense index: index has {built!r} over {n} vectors; configured 'auto', which picks {want.value!r} at "
            f"that size (flat up to {FLAT_MAX_VECTORS} vectors, hnsw-sq8 above); to serve this index as it is, set "
            f"dense_index = {built!r} (QA_DENSE_INDEX={built})"
        )
    return f"dense index: index has {built!r}, configured {configured.value!r}"


def _read_documents(path: Path) -> dict[str, Document]:
    documents: dict[str, Document] = {}
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                doc = Document.from_json(json.loads(line))
                documents[doc.id] = doc
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise IndexCorruptError(f"{path}: unreadable ({type(err).__name__}: {err}); rebuild with `qa index`") from err
    return documents


def _read_chunks(path: Path, documents: dict[str, Document]) -> list[Chunk]:
    chunks = []
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                doc = documents[row["doc_id"]]
                start, end = int(row["start"]), int(row["end"])
                if not 0 <= start <= end <= len(doc.text):
                    raise ValueError(f"span {start}:{end} outside document {doc.id!r}")
                chunks.append(Chunk.from_document(doc, start, end, row["ordinal"]))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise IndexCorruptError(f"{path}: unreadable ({type(err).__name__}: {err}); rebuild with `qa index`") from err
    return chunks


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
        if rel.startswith("/") or ".." in rel.split("/"):
            raise IndexCorruptError(f"{version / MANIFEST_NAME}: lists a file outside its folder ({rel!r})")
        path = version / rel
        if not path.is_file():
            raise IndexCorruptError(f"{path}: missing; rebuild with `qa index --index-dir {index_dir}`")
        actual = file_digest(path) if verify_files else None
        if path.stat().st_size != info.size or (actual is not None and actual.sha256 != info.sha256):
            raise IndexCorruptError(
                f"{path}: contents differ from the manifest (truncated or altered); rebuild with `qa index --index-dir {index_dir}`"
            )
    documents = _read_documents(version / "documents.jsonl")
    chunks = _read_chunks(version / "chunks.jsonl", documents)
    if len(chunks) != manifest.corpus.n_chunks or len(documents) != manifest.corpus.n_documents:
        raise IndexCorruptError(f"{version}: counts differ from the manifest; rebuild with `qa index`")
    dense = load_dense_index(version / "dense.faiss", len(chunks), manifest.model.dimension, manifest.dense)
    lexical = LexicalIndex.load(version / "bm25", len(chunks), manifest.lexical["k1"], manifest.lexical["b"])
    return CorpusIndex(version, manifest, documents, chunks, dense, lexical)


def chunk_vectors(index: CorpusIndex) -> np.ndarray:
    """Every chunk's exact vector, in chunk order: what an update rebuilds the dense index from.

    Flat and HNSW hold the vectors themselves; the 8-bit kinds hold codes that decode only approximately, so
    their vectors come from `vectors.npy` (memory-mapped: read only for an update, never held while serving).
    """
    n, dim = index.dense.ntotal, index.manifest.model.dimension
    if VECTORS_NAME in index.manifest.files:
        path = index.path / VECTORS_NAME
        try:
            vectors = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            raise IndexCorruptError(f"{path}: unreadable ({err}); rebuild with `qa index`") from err
        if vectors.shape != (n, dim) or vectors.dtype != np.float32:
            raise IndexCorruptError(
                f"{path}: holds {vectors.dtype} {vectors.shape}, the manifest says float32 ({n}, {dim}); "
                "rebuild with `qa index`"
            )
        return vectors
    kind = index.manifest.dense.get("type")
    if kind not in (DenseIndexType.FLAT.value, DenseIndexType.HNSW.value):
        raise IndexCorruptError(
            f"{index.path}: a {kind!r} index keeps only 8-bit codes and {VECTORS_NAME} is not listed in its "
            "manifest; rebuild with `qa index`"
        )
    return index.dense.reconstruct_n(0, n) if n else np.zeros((0, dim), dtype=np.float32)
