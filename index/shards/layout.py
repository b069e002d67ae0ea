"""The sharded index on disk: one version folder, one manifest, one folder per shard.

    versions/<name>/manifest.json        layout "sharded": per-shard files and checksums, the partition map,
                                         the shared quantizer and BM25 statistics, the update files applied
    versions/<name>/quantizer.faiss      the trained, empty IVF-SQ8 index every shard was filled from (IVF only)
    versions/<name>/bm25_stats.json      the collection statistics every shard's BM25 scores with
    versions/<name>/shards/NNN/          documents.jsonl, seq.npy, chunks.jsonl, dense.faiss, [vectors.npy], bm25/

`seq.npy` holds each document's place in the corpus: the global chunk order (documents by seq, each one's chunks
in reading order) is the single-node index's, so ties break the same way. The version folder is written under a
temporary name and published with `index.store.publish_version` (CURRENT replaced by one `os.replace`), exactly
as a single-node build: a build killed at any point leaves the previous index serving.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from pydantic import BaseModel, Field

from index.dense import DenseIndexType, DenseSpec, load_dense_index, save_dense_index
from index.documents import Chunk, Document
from index.errors import IndexCorruptError, IndexMismatchError
from index.lexical import LexicalIndex
from index.manifest import MANIFEST_NAME, FileInfo, IndexRecord, file_digest
from index.shards.lexical import STATS_NAME, CollectionStats, build_global_lexical
from index.shards.partition import PartitionMap
from index.store import (
    VECTORS_NAME,
    VERSIONS_DIR,
    IndexWriteError,
    _fsync_dir,
    _fsync_tree,
    _read_chunks,
    _read_documents,
    _version_name,
    _write_lines,
    check_documents,
    embedding_text,
    read_current_manifest_bytes,
    read_pointer,
)

SHARDED_FORMAT_VERSION = 1
QUANTIZER_NAME = "quantizer.faiss"
SHARDS_DIR = "shards"
SEQ_NAME = "seq.npy"


def shard_dir_name(shard: int) -> str:
    return f"{SHARDS_DIR}/{shard:03d}"


class ShardInfo(BaseModel):
    shard: int
    n_documents: int
    n_chunks: int
    files: dict[str, FileInfo]


class AppliedUpdate(BaseModel):
    """One update file applied to the index: its name and content digest identify it."""

    name: str
    sha256: str
    upserted: int
    deleted: int
    shards: list[int]
    applied_at: str


class ShardedManifest(IndexRecord):
    layout: Literal["sharded"] = "sharded"
    format_version: int = SHARDED_FORMAT_VERSION
    partitions: dict[str, Any]
    shared: dict[str, FileInfo]
    shards: list[ShardInfo]
    next_seq: int  # the seq a new document gets: one past every seq used so far
    updates: list[AppliedUpdate] = Field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """As a single-node manifest's (model, chunking, index kinds, corpus), plus the shard count."""
        return self.digest([*self.identity(), len(self.shards)])

    @property
    def partition_map(self) -> PartitionMap:
        return PartitionMap.from_json(self.partitions)


def sharded_dense_spec(kind: DenseIndexType, n_vectors: int) -> DenseSpec:
    """The dense kind of a sharded index: exact flat up to the single-node flat limit (so small corpora answer
    exactly as single node), else IVF-SQ8 over one shared quantizer. HNSW graphs cannot share a quantizer, so a
    fan-out over them would not be the single index's search: refused."""
    from index.dense import FLAT_MAX_VECTORS, dense_spec

    if kind is DenseIndexType.AUTO:
        kind = DenseIndexType.FLAT if n_vectors <= FLAT_MAX_VECTORS else DenseIndexType.IVF_SQ8
    if kind not in (DenseIndexType.FLAT, DenseIndexType.IVF_SQ8):
        raise IndexMismatchError(
            f"a sharded index needs dense_index 'flat', 'ivf-sq8' or 'auto', not {kind.value!r}: HNSW shards cannot "
            "share one quantizer, so their fan-out would not rank as one index"
        )
    return dense_spec(kind, n_vectors)


@dataclass(slots=True)
class ShardData:
    """What one shard is built from; documents in seq order, chunks and vectors aligned."""

    shard: int
    documents: list[Document]
    seqs: list[int]
    chunks: list[Chunk]
    vectors: np.ndarray


def write_shard(
    version_dir: Path, data: ShardData, spec: DenseSpec, stats: CollectionStats, k1: float, b: float
) -> ShardInfo:
    """Write one shard's files under `version_dir` (a temporary version folder) and return their digests.

    Runs inside a Ray task in a build, and locally for an update. The dense index is filled from the shared
    quantizer (`quantizer.faiss`, already in `version_dir`) for IVF-SQ8, so every shard's codes and lists are
    those of the single index.
    """
    if len(data.vectors) != len(data.chunks):
        raise ValueError(f"shard {data.shard}: {len(data.vectors)} vectors for {len(data.chunks)} chunks")
    lines = check_documents(data.documents)
    folder = version_dir / shard_dir_name(data.shard)
    if folder.exists():  # a retried task starts over
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    _write_lines(folder / "documents.jsonl", lines)
    np.save(folder / SEQ_NAME, np.asarray(data.seqs, dtype=np.int64), allow_pickle=False)
    _write_lines(folder / "chunks.jsonl", [json.dumps(c.to_json(), ensure_ascii=False) for c in data.chunks])
    vectors = np.ascontiguousarray(data.vectors, dtype=np.float32)
    if spec.type is DenseIndexType.IVF_SQ8:
        dense = faiss.read_index(str(version_dir / QUANTIZER_NAME))
        if len(vectors):
            dense.add(vectors)
        np.save(folder / VECTORS_NAME, vectors, allow_pickle=False)
    else:
        dense = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            dense.add(vectors)
    save_dense_index(dense, folder / "dense.faiss")
    by_id = {d.id: d for d in data.documents}
    texts = [embedding_text(by_id[c.doc_id], c) for c in data.chunks]
    build_global_lexical(texts, stats, k1, b).save(folder / "bm25")
    files = {p.relative_to(version_dir).as_posix(): file_digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    return ShardInfo(shard=data.shard, n_documents=len(data.documents), n_chunks=len(data.chunks), files=files)


def new_temp_version(index_dir: Path) -> Path:
    versions = Path(index_dir) / VERSIONS_DIR
    try:
        versions.mkdir(parents=True, exist_ok=True)
        tmp = versions / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
    except OSError as err:
        raise IndexWriteError(f"cannot write a new index version under {versions}: {err}") from err
    return tmp


def finish_version(index_dir: Path, tmp: Path, manifest: ShardedManifest) -> str:
    """Write the manifest into `tmp`, fsync everything, rename it into place; returns the version's name.
    On failure `tmp` is removed and IndexWriteError names the cause (the current index is untouched)."""
    versions = Path(index_dir) / VERSIONS_DIR
    try:
        (tmp / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        _fsync_tree(tmp)
        name = _version_name(manifest.fingerprint)
        os.rename(tmp, versions / name)
        _fsync_dir(versions)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise IndexWriteError(
            f"cannot write a new index version under {versions}: {err}; the current index is unchanged"
        ) from err
    return name


def shared_digests(tmp: Path) -> dict[str, FileInfo]:
    return {name: file_digest(tmp / name) for name in (QUANTIZER_NAME, STATS_NAME) if (tmp / name).is_file()}


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read_sharded_manifest(index_dir: Path) -> tuple[Path, ShardedManifest]:
    """The current version folder and its sharded manifest, checked against CURRENT's digest."""
    version, path, raw = read_current_manifest_bytes(index_dir, build_hint=" --shards N")
    try:
        manifest = ShardedManifest.model_validate_json(raw)
    except Exception as err:
        raise IndexCorruptError(f"{path}: not a sharded manifest ({type(err).__name__}: {err})") from err
    if manifest.format_version != SHARDED_FORMAT_VERSION:
        raise IndexMismatchError(
            f"{path}: sharded format {manifest.format_version}, this version reads {SHARDED_FORMAT_VERSION}; rebuild"
        )
    return version, manifest


def is_sharded(index_dir: Path) -> bool:
    """Whether CURRENT in `index_dir` names a sharded index (False when there is no index, or a single-node one)."""
    pointer = read_pointer(Path(index_dir))
    if pointer is None:
        return False
    path = Path(index_dir) / VERSIONS_DIR / pointer.name / MANIFEST_NAME
    try:
        return json.loads(path.read_bytes()).get("layout") == "sharded"
    except (OSError, ValueError, AttributeError):
        return False


def verify_files(version: Path, files: dict[str, FileInfo], checksums: bool = True) -> None:
    for rel, info in files.items():
        if rel.startswith("/") or ".." in rel.split("/"):
            raise IndexCorruptError(f"{version / MANIFEST_NAME}: lists a file outside its folder ({rel!r})")
        path = version / rel
        if not path.is_file():
            raise IndexCorruptError(f"{path}: missing; rebuild with `qa index --shards`")
        if path.stat().st_size != info.size or (checksums and file_digest(path).sha256 != info.sha256):
            raise IndexCorruptError(f"{path}: contents differ from the manifest (truncated or altered); rebuild")


@dataclass(slots=True)
class ShardContent:
    """One shard's documents (seq order) with their seqs, and its chunks."""

    documents: list[Document]
    seqs: np.ndarray
    chunks: list[Chunk]


def read_shard_content(version: Path, info: ShardInfo) -> ShardContent:
    folder = version / shard_dir_name(info.shard)
    documents = _read_documents(folder / "documents.jsonl")
    chunks = _read_chunks(folder / "chunks.jsonl", documents)
    try:
        seqs = np.load(folder / SEQ_NAME, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise IndexCorruptError(f"{folder / SEQ_NAME}: unreadable ({err}); rebuild") from err
    if len(seqs) != len(documents) or len(chunks) != info.n_chunks or len(documents) != info.n_documents:
        raise IndexCorruptError(f"{folder}: counts differ from the manifest; rebuild with `qa index --shards`")
    return ShardContent(list(documents.values()), seqs, chunks)


def load_shard_search(version: Path, manifest: ShardedManifest, shard: int) -> tuple[faiss.Index, LexicalIndex]:
    """One shard's FAISS and BM25 indexes (what a shard searcher holds)."""
    info = manifest.shards[shard]
    folder = version / shard_dir_name(shard)
    dense = load_dense_index(folder / "dense.faiss", info.n_chunks, manifest.model.dimension, manifest.dense)
    lexical = LexicalIndex.load(folder / "bm25", info.n_chunks, manifest.lexical["k1"], manifest.lexical["b"])
    return dense, lexical


def shard_vectors(version: Path, manifest: ShardedManifest, shard: int) -> np.ndarray:
    """A shard's exact vectors in its chunk order (from vectors.npy for IVF-SQ8, from the flat index otherwise)."""
    info = manifest.shards[shard]
    folder = version / shard_dir_name(shard)
    dim = manifest.model.dimension
    if (folder / VECTORS_NAME).is_file():
        vectors = np.load(folder / VECTORS_NAME, allow_pickle=False)
    else:
        dense = load_dense_index(folder / "dense.faiss", info.n_chunks, dim, manifest.dense)
        vectors = dense.reconstruct_n(0, info.n_chunks) if info.n_chunks else np.zeros((0, dim), np.float32)
    if vectors.shape != (info.n_chunks, dim):
        raise IndexCorruptError(f"{folder}: vectors are {vectors.shape}, the manifest says ({info.n_chunks}, {dim})")
    return vectors


def link_shard(src_version: Path, dst_version: Path, info: ShardInfo) -> None:
    """Carry an unchanged shard into a new version: hard links (same bytes, no copy), a copy where links fail."""
    for rel in info.files:
        dst = dst_version / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src_version / rel, dst)
        except OSError:
            shutil.copy2(src_version / rel, dst)


def global_order(contents: Sequence[ShardContent]) -> list[tuple[int, int]]:
    """(shard, local document index) for every document, in corpus (seq) order."""
    keyed = [(int(c.seqs[i]), s, i) for s, c in enumerate(contents) for i in range(len(c.documents))]
    keyed.sort()
    return [(s, i) for _, s, i in keyed]
